"""Users, roles, bearer tokens, login and the role check every route and socket event uses."""
