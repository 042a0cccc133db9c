// The rules for one value of resource-config.txt, which gem-schd's and gem-pmgr's flags and the
// webhook's annotations share (include/gem/config.h): sizes, shares, latency targets, admission.
//
// Decisions:
// - Sizes: fractional only with a K/M/G/T unit ("1.5GiB"), rounded down to whole bytes; a bare
//   fractional byte count ("1.5", "1.5B") is an error. Unit letters are case-insensitive ("4gib" ==
//   "4GiB"); the final "B" is optional, so the Kubernetes quantities k, M, G, T, Ki, Mi, Gi, Ti are
//   taken as they are ("8Gi", "512Mi"); "B" alone means bytes. Not taken: Kubernetes' P, E, Pi, Ei
//   (no GPU has that much memory), exponents ("8e9") and milli ("m" is mega here).
// - Shares and latencies are parsed with std::from_chars (locale-independent, unlike strtod) and
//   must use every character; "nan", "inf" and values out of range are rejected.
// - A latency must be a plain decimal (digits, optionally '.' and digits: "5", "2.5", "0.001"), not
//   an exponent, hex or "5.", and must not round to 0 µs ("0.0004", "1e-9" would mean "no latency
//   client" while the operator asked for one).
// - The REQUESTs may exceed 1 by at most 1e-9 so that e.g. 0.1 + 0.2 + 0.7 is accepted.
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <system_error>

#include "field_text.h"
#include "gem/config.h"

namespace gem {

namespace {

constexpr double kSumSlack = 1e-9;

char lower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

// The number syntax of shares and latencies: std::from_chars over the whole text, finite.
bool decimal(std::string_view text, double* v) {
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, *v, std::chars_format::general);
  return ec == std::errc() && ptr == end && std::isfinite(*v);
}

std::string share_text(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

}  // namespace

// Field text for messages (field_text.h). Long fields are cut: the point is to find the spot.
std::string quote_field(std::string_view s) {
  constexpr size_t kMaxShown = 64;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMaxShown; ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", c);
      out += buf;
    }
  }
  if (s.size() > kMaxShown) out += "...";
  out += "'";
  return out;
}

bool parse_share(std::string_view text, double* out, std::string* why) {
  double v = 0;
  if (!decimal(text, &v)) {
    if (why != nullptr) *why = quote_field(text) + " is not a number";
    return false;
  }
  if (v < 0 || v > 1) {
    if (why != nullptr) *why = std::string(text) + " is not between 0 and 1";
    return false;
  }
  *out = v + 0.0;  // -0 -> +0
  if (why != nullptr) why->clear();
  return true;
}

bool parse_latency_ms(std::string_view text, uint32_t* us, std::string* why) {
  auto bad = [&](const std::string& reason) {
    if (why != nullptr) *why = quote_field(text) + " " + reason;
    return false;
  };
  const std::string range = "[0.001, " + std::to_string(static_cast<int>(kMaxLatencyMs)) + "]";
  // A plain decimal: digits, then optionally '.' and digits. No sign, exponent, hex, spaces or
  // bare '.': a latency is written as people read it, and "1e-9" or "5." is a mistake.
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  size_t digits = i;
  if (i < text.size() && text[i] == '.') {
    const size_t dot = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    if (i == dot) digits = 0;  // "5." has no fraction digits
  }
  double ms = 0;
  if (digits == 0 || i != text.size() || !decimal(text, &ms)) {
    return bad("is not a plain decimal number of milliseconds in " + range + " (digits, optionally '.' and digits)");
  }
  if (ms > kMaxLatencyMs) return bad("is not a number of milliseconds in " + range + ": above a minute");
  const double rounded = std::floor(ms * 1000 + 0.5);
  if (rounded < 1) return bad("ms rounds to 0 µs, which is no latency target: a number of milliseconds in " + range);
  *us = static_cast<uint32_t>(rounded);
  if (why != nullptr) why->clear();
  return true;
}

std::string admission_error(double request, double limit, double admitted) {
  if (!(request >= 0 && request <= 1) || !(limit >= 0 && limit <= 1)) {
    return "REQUEST " + share_text(request) + " and LIMIT " + share_text(limit) + " must be between 0 and 1";
  }
  if (request > limit) return "REQUEST " + share_text(request) + " is above LIMIT " + share_text(limit);
  const double sum = admitted + request;
  if (sum > 1 + kSumSlack) {
    return "REQUEST " + share_text(request) + " brings the REQUESTs to " + share_text(sum) + ", above 1";
  }
  return {};
}

bool parse_size(std::string_view text, uint64_t* bytes, std::string* why) {
  auto bad = [&](const std::string& reason) {
    if (why != nullptr) *why = quote_field(text) + " is not a size (" + reason + "): expected " + kSizeForms;
    return false;
  };
  size_t i = 0;
  uint64_t whole = 0;
  bool too_big = false;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') {
    uint64_t d = static_cast<uint64_t>(text[i] - '0');
    if (whole > (UINT64_MAX - d) / 10) too_big = true;
    whole = whole * 10 + d;
    ++i;
  }
  if (i == 0) return bad(text.empty() ? "empty" : "it does not start with a digit");
  std::string_view frac;
  if (i < text.size() && text[i] == '.') {
    size_t frac_start = ++i;
    while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
    frac = text.substr(frac_start, i - frac_start);
    if (frac.empty()) return bad("no digit after the '.'");
  }

  const std::string_view unit_text = text.substr(i);
  std::string suffix;
  for (char c : unit_text) suffix += lower(c);
  uint64_t unit = 1;
  if (!suffix.empty()) {
    if (suffix.back() == 'b') suffix.pop_back();  // "GB", "GiB", "B"
    const bool binary = suffix.size() == 2 && suffix[1] == 'i';
    static const char kPrefixes[] = "kmgt";
    const char* p = nullptr;
    if (suffix.size() == (binary ? 2u : 1u)) {
      for (const char* q = kPrefixes; *q != '\0'; ++q) {
        if (*q == suffix[0]) p = q;
      }
    }
    if (!suffix.empty() && p == nullptr) return bad("unknown unit " + quote_field(unit_text));
    if (p != nullptr) {
      for (const char* q = kPrefixes; q <= p; ++q) unit *= binary ? 1024 : 1000;
    }
  }
  if (!frac.empty() && unit == 1) return bad("a fraction of a byte");

  auto too_large = [&] { return bad("more than " + std::to_string(UINT64_MAX) + " bytes"); };
  if (too_big || (whole != 0 && unit > UINT64_MAX / whole)) return too_large();
  uint64_t total = whole * unit;
  // floor(0.d1d2...dk * unit) exactly, by Horner's rule from the last digit:
  // floor((d*unit + x) / 10) == floor((d*unit + floor(x)) / 10) for integer d*unit, and x < unit
  // throughout, so nothing overflows (unit <= 1024^4).
  uint64_t part = 0;
  for (size_t k = frac.size(); k-- > 0;) {
    part = (static_cast<uint64_t>(frac[k] - '0') * unit + part) / 10;
  }
  if (part > UINT64_MAX - total) return too_large();
  *bytes = total + part;
  if (why != nullptr) why->clear();
  return true;
}

}  // namespace gem
