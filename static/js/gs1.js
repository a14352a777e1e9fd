// What a scan says, for the handhelds' offline checks (pack and returns screens): its text, its
// item keys (as read, then its GTIN in every length), and the lot, serial and expiry of a GS1
// element string. The same rules as floor/scan/gs1.py, for the AIs a handheld checks itself
// (01, 10, 11, 13, 15, 16, 17, 21). A GS1 read it cannot check whole (another AI, a malformed
// element, a Digital Link URI, a '<GS>' whose meaning is the scanner profile's) is `unsure`:
// never half-read, the server decides when the connection is back.
(function () {
  "use strict";

  var GS = "\u001d";
  var AIM = /^\][A-Za-z][0-9A-Za-z]/;
  // Without a scanner profile these substitutes are separators on the server too: GS1 data
  // cannot hold them. '<GS>' can (it is a legal lot), so it depends on the profile.
  var SUBSTITUTES = ["{GS}", "[GS]", "^]", "\\x1d", "\\u001d", "\\u001D"];
  var GS1_SYMBOLOGIES = { "]C1": 1, "]d2": 1, "]Q3": 1, "]e0": 1, "]J1": 1 };
  var DIGITAL_LINK = /^https?:\/\/[^\/]*\/(?:[^?#]*\/)?(?:01|00|253|255|401|402|414|417|8003|8004|8006|8010|8013|8017|8018|gtin|sscc)\/[^\/?#]/i;
  var CSET82 = /^[!"%-?A-Z_a-z]+$/;
  var FIXED = { "01": 14, "11": 6, "13": 6, "15": 6, "16": 6, "17": 6 };
  var VARIABLE = { "10": 20, "21": 20 };

  function checkDigitOk(digits) {
    if (!/^\d+$/.test(digits)) return false;
    var total = 0;
    for (var i = 1; i < digits.length; i++) {
      total += Number(digits.charAt(digits.length - 1 - i)) * (i % 2 === 1 ? 3 : 1);
    }
    return String((10 - total % 10) % 10) === digits.slice(-1);
  }

  function gtin14(code) {
    if ([8, 12, 13, 14].indexOf(code.length) < 0 || !checkDigitOk(code)) return null;
    return ("00000000000000" + code).slice(-14);
  }

  // GS1 section 7.12: the year of YY within 50 years ahead and 49 behind this one.
  function yearOf(yy, now) {
    var year = new Date(now == null ? Date.now() : now).getUTCFullYear();
    var current = year % 100, century = year - current, diff = yy - current;
    if (diff >= 51) return century - 100 + yy;
    if (diff <= -50) return century + 100 + yy;
    return century + yy;
  }

  // { y, m, d } of YYMMDD (DD 00: the month's last day), or null when no such day exists.
  function dateOf(yymmdd, now) {
    if (!/^\d{6}$/.test(yymmdd || "")) return null;
    var y = yearOf(Number(yymmdd.slice(0, 2)), now);
    var m = Number(yymmdd.slice(2, 4)), d = Number(yymmdd.slice(4, 6));
    if (m < 1 || m > 12) return null;
    var last = new Date(Date.UTC(y, m, 0)).getUTCDate();
    if (d === 0) d = last;
    return d >= 1 && d <= last ? { y: y, m: m, d: d } : null;
  }

  // The AIs of an element string when every one is checked and valid; else null.
  function elements(text) {
    var pos = text.charAt(0) === GS ? 1 : 0, seen = {}, ok = false;
    while (pos < text.length) {
      var ai = text.slice(pos, pos + 2), value;
      if (FIXED[ai]) {
        value = text.slice(pos + 2, pos + 2 + FIXED[ai]);
        if (!/^\d+$/.test(value) || value.length !== FIXED[ai]) return null;
        if (ai === "01" ? !checkDigitOk(value) : !dateOf(value)) return null;
        pos += 2 + FIXED[ai];
        if (text.charAt(pos) === GS) pos += 1;
      } else if (VARIABLE[ai]) {
        var end = text.indexOf(GS, pos + 2);
        if (end < 0) end = text.length;
        value = text.slice(pos + 2, end);
        if (!value || value.length > VARIABLE[ai] || !CSET82.test(value)) return null;
        pos = end + 1;
      } else {
        return null;
      }
      if (seen[ai] != null && seen[ai] !== value) return null;
      seen[ai] = value;
      ok = true;
    }
    return ok ? seen : null;
  }

  function read(raw) {
    var text = String(raw == null ? "" : raw).replace(/^[ \t\r\n\u0000]+|[ \t\r\n\u0000]+$/g, "");
    var aim = text.match(AIM);
    var symbology = aim ? aim[0] : null;
    if (aim) text = text.slice(aim[0].length);
    SUBSTITUTES.forEach(function (token) { text = text.split(token).join(GS); });
    var out = { text: text, keys: [text], lot: null, serial: null, expiry: null, gtin: null,
                unsure: false };
    if (!text) return out;
    var claimed = !!GS1_SYMBOLOGIES[symbology] || text.indexOf(GS) >= 0 ||
      (/^0[12]\d{14}/.test(text) && checkDigitOk(text.slice(2, 16))) ||
      (/^00\d{18}/.test(text) && checkDigitOk(text.slice(2, 20)));
    if (DIGITAL_LINK.test(text) || (claimed && text.indexOf("<GS>") >= 0)) {
      out.unsure = true;
      return out;
    }
    var gtin = null;
    if (claimed) {
      var ais = elements(text);
      if (!ais) {
        out.unsure = true;
        return out;
      }
      gtin = ais["01"] || null;
      out.gtin = gtin;
      out.lot = ais["10"] || null;
      out.serial = ais["21"] || null;
      out.expiry = ais["17"] || null;
    } else {
      gtin = gtin14(text);
    }
    if (gtin) {
      [14, 13, 12, 8].forEach(function (length) {
        var short = gtin.slice(14 - length);
        if (/^0*$/.test(gtin.slice(0, 14 - length)) && out.keys.indexOf(short) < 0) out.keys.push(short);
      });
    }
    return out;
  }

  window.FloorGs1 = { read: read, dateOf: dateOf, GS: GS, GS1_SYMBOLOGIES: GS1_SYMBOLOGIES };
})();
