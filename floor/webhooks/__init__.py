"""Status webhooks to an OMS: subscriptions, the outbox fan-out, signed at-least-once delivery."""
