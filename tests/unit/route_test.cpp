// gem-pmgr's Route (the pure per-scheduler core) driven by scenario scripts with a simulated clock,
// like etcd raft's interaction tests. Each file in tests/unit/testdata/route/ is a list of
//   > T_MS command args...
// lines, each followed by the actions the route must return, one per line, in order ('#' lines
// and blank lines are comments). Commands:
//   hook H hello|gone                     hook H request [burst=B]
//   hook H release used=U end=E [burst=B] [again]      (µs; "max" is UINT64_MAX)
//   hook H renew used=U [burst=B]          every hook command takes [id=N] (its request id)
//   sched connected|lost|heard|heartbeat|error        sched settings req=R lim=L mem=M
//   sched grant Q [id=N]    sched revoke HELD          tick    state
// Run with GEM_REWRITE=1 to rewrite the files with what the route does now (then review the diff).
#include "../../pod-manager/route.h"

#include <gtest/gtest.h>

#include <dirent.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

namespace gem::pmgr {
namespace {

std::string testdata_dir() {
  if (const char* src = std::getenv("GEM_SRC")) return std::string(src) + "/tests/unit/testdata/route";
  std::string f = __FILE__;
  return f.substr(0, f.rfind('/')) + "/testdata/route";
}

const char* code_name(proto::ErrorCode c) {
  switch (c) {
    case proto::ErrorCode::kUnknownClient: return "UnknownClient";
    case proto::ErrorCode::kSchedulerUnavailable: return "SchedulerUnavailable";
    case proto::ErrorCode::kProtocol: return "Protocol";
    case proto::ErrorCode::kRemoved: return "Removed";
    case proto::ErrorCode::kDenied: return "Denied";
    case proto::ErrorCode::kBusy: return "Busy";
  }
  return "?";
}

std::string body_text(const proto::Message& m) {
  std::ostringstream o;
  const proto::Body& b = m.body;
  if (const auto* s = std::get_if<proto::ClientSettings>(&b)) {
    o << "ClientSettings req=" << s->request_ppm << " lim=" << s->limit_ppm << " mem=" << s->gpu_mem_bytes;
  } else if (const auto* g = std::get_if<proto::TokenGrant>(&b)) {
    o << "TokenGrant quota=" << g->quota_us;
  } else if (const auto* e = std::get_if<proto::Error>(&b)) {
    o << "Error " << code_name(e->code);
  } else if (const auto* r = std::get_if<proto::TokenRevoke>(&b)) {
    o << "TokenRevoke held=" << r->held_us;
  } else if (const auto* h = std::get_if<proto::Hello>(&b)) {
    o << "Hello client=" << h->client << " uuid=" << h->device_uuid << " pid=" << h->pid << " secret=" << h->secret;
  } else if (const auto* q = std::get_if<proto::TokenRequest>(&b)) {
    o << "TokenRequest burst=" << q->last_burst_us;
  } else if (const auto* rel = std::get_if<proto::TokenRelease>(&b)) {
    o << "TokenRelease used=" << rel->used_us << " burst=" << rel->burst_us << " again=" << rel->again;
  } else if (const auto* ren = std::get_if<proto::TokenRenew>(&b)) {
    o << "TokenRenew used=" << ren->used_us << " burst=" << ren->burst_us;
  } else {
    o << proto::type_name(b);
  }
  if (m.request_id != 0) o << " id=" << m.request_id;
  return o.str();
}

std::string action_text(const Action& a) {
  switch (a.kind) {
    case Action::Kind::kToHook: return "hook " + std::to_string(a.hook) + " <- " + body_text(a.msg);
    case Action::Kind::kToScheduler: return "sched <- " + body_text(a.msg);
    case Action::Kind::kConnect: return "connect";
    case Action::Kind::kCloseScheduler: return "close: " + a.why;
    case Action::Kind::kDropHook: return "drop hook " + std::to_string(a.hook) + ": " + a.why;
  }
  return "?";
}

uint64_t num(const std::string& v) { return v == "max" ? UINT64_MAX : std::stoull(v); }

// One scenario: the route under test and the interpreter of its commands.
class Scenario {
 public:
  Scenario() : route_(options()) {}

  static RouteOptions options() {
    RouteOptions o;
    o.client = "c";
    o.device_uuid = "GPU-fa4e0000-0000-0000-0000-000000000000";
    o.secret = "s3";
    o.pid = 7;
    o.scheduler_timeout = 600000;
    o.retry_period = 1000000;
    o.heartbeat_period = 200000;
    return o;
  }

  // Runs one command line (without "> "); returns the route's actions, one line each.
  std::vector<std::string> run(const std::string& line) {
    std::istringstream in(line);
    std::string t_ms, who;
    in >> t_ms >> who;
    const Micros now = static_cast<Micros>(std::stoll(t_ms)) * 1000;
    std::vector<std::string> words;
    std::map<std::string, std::string> kv;
    for (std::string w; in >> w;) {
      const size_t eq = w.find('=');
      if (eq == std::string::npos) {
        words.push_back(w);
      } else {
        kv[w.substr(0, eq)] = w.substr(eq + 1);
      }
    }
    auto get = [&](const std::string& k) { return kv.count(k) ? num(kv[k]) : 0; };
    Actions acts;
    std::vector<std::string> out;
    if (who == "hook") {
      const HookId h = std::stoull(words.at(0));
      const std::string& verb = words.at(1);
      const uint64_t id = get("id");
      if (verb == "hello") {
        route_.hook_hello(h, id, now, &acts);
      } else if (verb == "request") {
        route_.hook_request(h, id, proto::TokenRequest{get("burst")}, now, &acts);
      } else if (verb == "release") {
        const bool again = std::find(words.begin(), words.end(), "again") != words.end();
        route_.hook_release(h, id, proto::TokenRelease{get("used"), get("burst"), 0, get("end"), again}, now, &acts);
      } else if (verb == "renew") {
        route_.hook_renew(h, id, proto::TokenRenew{get("used"), get("burst")}, now, &acts);
      } else if (verb == "gone") {
        route_.hook_gone(h, now, &acts);
      } else {
        ADD_FAILURE() << "unknown hook command: " << line;
      }
    } else if (who == "sched") {
      const std::string& verb = words.at(0);
      const uint64_t id = get("id");
      if (verb == "connected") {
        route_.sched_connected(now, &acts);
      } else if (verb == "lost") {
        route_.sched_lost("connection closed by peer", now, &acts);
      } else if (verb == "heard") {
        route_.sched_heard(now);
      } else if (verb == "heartbeat") {
        route_.sched_message({0, proto::Heartbeat{}}, now, &acts);
      } else if (verb == "error") {
        route_.sched_message({id, proto::Error{proto::ErrorCode::kUnknownClient, "no such client"}}, now, &acts);
      } else if (verb == "settings") {
        route_.sched_message(
            {id, proto::ClientSettings{static_cast<uint32_t>(get("req")), static_cast<uint32_t>(get("lim")), get("mem")}},
            now, &acts);
      } else if (verb == "grant") {
        route_.sched_message({id, proto::TokenGrant{num(words.at(1))}}, now, &acts);
      } else if (verb == "revoke") {
        route_.sched_message({0, proto::TokenRevoke{num(words.at(1))}}, now, &acts);
      } else {
        ADD_FAILURE() << "unknown sched command: " << line;
      }
    } else if (who == "tick") {
      route_.tick(now, &acts);
    } else if (who == "state") {
      out.push_back(state_line());
    } else {
      ADD_FAILURE() << "unknown command: " << line;
    }
    for (const Action& a : acts) out.push_back(action_text(a));
    return out;
  }

 private:
  std::string state_line() const {
    std::ostringstream o;
    o << "state " << Route::state_name(route_.state()) << " token=" << (route_.token().held() ? "held" : "none")
      << " holders=";
    const auto hs = route_.token().holders();
    for (size_t i = 0; i < hs.size(); ++i) o << (i ? "," : "") << hs[i];
    if (hs.empty()) o << "-";
    o << " waiters=" << route_.waiter_count() << " requested=" << route_.requested()
      << " renewing=" << route_.renewing();
    const Micros d = route_.next_deadline();
    o << " next=";
    if (d == kNever) {
      o << "never";
    } else {
      o << d / 1000;
    }
    return o.str();
  }

  Route route_;
};

struct Step {
  int line;
  std::string command;
  std::vector<std::string> expected;
};

std::vector<std::string> scenario_files() {
  std::vector<std::string> files;
  DIR* d = opendir(testdata_dir().c_str());
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".txt") files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

void run_file(const std::string& name) {
  const std::string path = testdata_dir() + "/" + name;
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  const bool rewrite = std::getenv("GEM_REWRITE") != nullptr;
  std::vector<std::string> rewritten;
  Scenario sc;
  for (size_t i = 0; i < lines.size();) {
    const std::string& l = lines[i];
    if (l.rfind("> ", 0) != 0) {
      // Comments and blank lines are kept; stray expectation lines only before the first command.
      if (l.empty() || l[0] == '#') {
        rewritten.push_back(l);
      } else {
        ADD_FAILURE() << path << ":" << i + 1 << ": expectation without a command: " << l;
      }
      ++i;
      continue;
    }
    Step st{static_cast<int>(i + 1), l.substr(2), {}};
    size_t j = i + 1;
    for (; j < lines.size() && lines[j].rfind("> ", 0) != 0 && !lines[j].empty() && lines[j][0] != '#'; ++j) {
      st.expected.push_back(lines[j]);
    }
    const std::vector<std::string> got = sc.run(st.command);
    if (!rewrite && got != st.expected) {
      std::string e, g;
      for (const auto& s : st.expected) e += "  " + s + "\n";
      for (const auto& s : got) g += "  " + s + "\n";
      ADD_FAILURE() << path << ":" << st.line << ": > " << st.command << "\nexpected:\n" << e << "got:\n" << g;
    }
    rewritten.push_back(l);
    rewritten.insert(rewritten.end(), got.begin(), got.end());
    i = j;
  }
  if (rewrite) {
    std::ofstream o(path, std::ios::trunc);
    for (const auto& l : rewritten) o << l << "\n";
  }
}

TEST(RouteScenario, AllScriptsPass) {
  const std::vector<std::string> files = scenario_files();
  ASSERT_GE(files.size(), 7u) << "scenario scripts not found in " << testdata_dir()
                              << " (run from the repository root, or set GEM_SRC)";
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    run_file(f);
  }
}

// Properties that are easier to state in code than in a script.

TEST(Route, IdleRouteHasNoDeadline) {
  Route r(Scenario::options());
  EXPECT_EQ(r.next_deadline(), kNever) << "an idle gem-pmgr sleeps in poll (at most 200 ms at a time)";
}

TEST(Route, HostileReleaseValuesAreClampedToTheHold) {
  Route r(Scenario::options());
  Actions a;
  r.hook_hello(1, 1, 0, &a);
  r.sched_connected(0, &a);
  r.sched_message({1, proto::ClientSettings{}}, 0, &a);
  r.hook_request(1, 2, {}, 0, &a);
  r.sched_message({0, proto::TokenGrant{UINT64_MAX}}, 1000, &a);
  a.clear();
  r.hook_release(1, 3, proto::TokenRelease{UINT64_MAX, UINT64_MAX, UINT64_MAX, UINT64_MAX, false}, 51000, &a);
  ASSERT_EQ(a.size(), 1u);
  const auto* rel = std::get_if<proto::TokenRelease>(&a[0].msg.body);
  ASSERT_NE(rel, nullptr);
  EXPECT_EQ(rel->used_us, 50000u) << "held from 1 ms to 51 ms";
  EXPECT_EQ(rel->burst_us, static_cast<uint64_t>(proto::kMaxWireMicros));
}

TEST(Route, LongErrorTextsFitInAFrame) {
  Route r(Scenario::options());
  Actions a;
  r.hook_hello(1, 1, 0, &a);
  r.sched_lost(std::string(1000, 'x'), 0, &a);
  a.clear();
  r.hook_request(1, 2, {}, 1000, &a);
  ASSERT_EQ(a.size(), 1u);
  std::vector<uint8_t> frame;
  EXPECT_TRUE(proto::encode(a[0].msg, &frame));
}

}  // namespace
}  // namespace gem::pmgr
