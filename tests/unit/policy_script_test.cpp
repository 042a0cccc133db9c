// gem-schd's token policy (scheduler/policy.h) driven by scenario scripts (format: script.h) in
// tests/unit/testdata/policy/, with a simulated clock in ms. Commands:
//   opts [window=MS] [base=MS] [min=MS] [grace=MS] [floor=MS] [fit=on|off] [swing=MS]   a new Policy
//                              (defaults: Gemini's 250/100 ms quotas, 10 s window, 500 ms grace)
//   T clients NAME:REQ:LIM[:LATENCY_MS] ...     set_clients (LATENCY_MS > 0: a latency client)
//   T clients n=N req=R [lim=L]                 N clients c0..c(N-1) of equal shares
//   T request NAME [burst=MS]
//   T schedule                 -> "grant NAME quota=MS [corun]" per grant made now, or "none"
//   T release NAME used=MS [burst=MS]           T renew NAME used=MS -> "renewed quota=MS" | "refused"
//   T gone NAME                T expire -> "revoke NAME held=MS" per revocation, or "none"
//   T next                     -> "next=T" (ms, 3 decimals) or "next=never"
//   T stats NAME               -> "share=S grants=N coruns=N revocations=N [waiting] [holding] [corun]"
// Run with GEM_REWRITE=1 to rewrite the files with what the policy does now (then review the diff).
#include "../../scheduler/policy.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <memory>
#include <sstream>

#include "script.h"

namespace gem::sched {
namespace {

constexpr Micros kMs = 1000;

Micros ms(const std::string& v) { return static_cast<Micros>(std::stod(v) * kMs + 0.5); }

std::string ms_text(Micros us) {
  char buf[48];
  if (us % kMs == 0) {
    std::snprintf(buf, sizeof(buf), "%lld", static_cast<long long>(us / kMs));
  } else {
    std::snprintf(buf, sizeof(buf), "%.3f", static_cast<double>(us) / kMs);
  }
  return buf;
}

class PolicyScenario {
 public:
  PolicyScenario() : p_(std::make_unique<Policy>(PolicyOptions{})) {}

  std::vector<std::string> run(const std::string& line) {
    const gem::testing::Command c = gem::testing::parse_command(line);
    const std::vector<std::string>& w = c.words;
    auto kv = [&](const char* k, const std::string& d) { return c.kv.count(k) ? c.kv.at(k) : d; };
    if (w.at(0) == "opts") {
      PolicyOptions o;
      o.window = ms(kv("window", "10000"));
      o.base_quota = ms(kv("base", "250"));
      o.min_quota = ms(kv("min", "100"));
      o.lease_grace = ms(kv("grace", "500"));
      o.quota_floor = ms(kv("floor", "10"));
      o.fit_quotas = kv("fit", "on") == "on";
      o.swing = ms(kv("swing", "40"));
      p_ = std::make_unique<Policy>(o);
      return {};
    }
    const Micros now = ms(w.at(0));
    const std::string& cmd = w.at(1);
    if (cmd == "clients") return clients(c, now);
    if (cmd == "request") {
      p_->request(w.at(2), ms(kv("burst", "0")), now);
      return {};
    }
    if (cmd == "schedule") {
      std::vector<std::string> out;
      while (auto g = p_->schedule(now)) {
        out.push_back("grant " + g->client + " quota=" + ms_text(g->quota) + (g->corun ? " corun" : ""));
      }
      if (out.empty()) out.push_back("none");
      return out;
    }
    if (cmd == "release") {
      p_->release(w.at(2), ms(kv("used", "0")), ms(kv("burst", "0")), now);
      return {};
    }
    if (cmd == "renew") {
      const auto q = p_->renew(w.at(2), ms(kv("used", "0")), ms(kv("burst", "0")), now);
      return {q ? "renewed quota=" + ms_text(*q) : "refused"};
    }
    if (cmd == "gone") {
      p_->disconnect(w.at(2), now);
      return {};
    }
    if (cmd == "expire") {
      std::vector<std::string> out;
      while (auto r = p_->expire_lease(now)) out.push_back("revoke " + r->client + " held=" + ms_text(r->held));
      if (out.empty()) out.push_back("none");
      return out;
    }
    if (cmd == "next") {
      const Micros t = p_->next_event(now);
      return {t == kNever ? "next=never" : "next=" + ms_text(t)};
    }
    if (cmd == "stats") {
      const auto s = p_->stats(w.at(2), now);
      if (!s) return {"unknown"};
      char share[32];
      std::snprintf(share, sizeof(share), "%.4f", s->share);
      std::ostringstream o;
      o << "share=" << share << " grants=" << s->grants << " coruns=" << s->coruns << " revocations=" << s->revocations;
      if (s->waiting) o << " waiting";
      if (s->holding) o << " holding";
      if (s->corun) o << " corun";
      return {o.str()};
    }
    return {"unknown command " + cmd};
  }

 private:
  std::vector<std::string> clients(const gem::testing::Command& c, Micros now) {
    std::vector<ClientShare> cs;
    if (c.kv.count("n")) {
      const int n = std::stoi(c.kv.at("n"));
      for (int i = 0; i < n; ++i) {
        cs.push_back({"c" + std::to_string(i), std::stod(c.kv.at("req")),
                      c.kv.count("lim") ? std::stod(c.kv.at("lim")) : 1.0, 0});
      }
    }
    for (size_t i = 2; i < c.words.size(); ++i) {
      std::vector<std::string> f;
      std::stringstream ss(c.words[i]);
      for (std::string x; std::getline(ss, x, ':');) f.push_back(x);
      cs.push_back({f.at(0), std::stod(f.at(1)), std::stod(f.at(2)), f.size() > 3 ? ms(f[3]) : 0});
    }
    std::vector<std::string> out;
    for (const std::string& d : p_->set_clients(cs, now)) out.push_back("dropped " + d);
    return out;
  }

  std::unique_ptr<Policy> p_;
};

TEST(PolicyScenario, AllScriptsPass) {
  gem::testing::run_all_scripts("policy", 1, [](const std::string&) {
    auto sc = std::make_shared<PolicyScenario>();
    return [sc](const std::string& line) { return sc->run(line); };
  });
}

}  // namespace
}  // namespace gem::sched
