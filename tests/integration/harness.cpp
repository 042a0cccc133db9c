#include "harness.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "../../scheduler/policy.h"

namespace gemtest {

bool sanitized() {
  const char* s = std::getenv("SANITIZE");
  return s != nullptr && std::string(s) == "1";
}

double slack() { return sanitized() ? 2.0 : 1.0; }
double share_tolerance() { return sanitized() ? 0.06 : 0.02; }

void sleep_ms(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

std::string read_text(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

void write_text(const std::string& path, const std::string& text) {
  // In place: truncate and rewrite the same inode.
  FILE* f = std::fopen(path.c_str(), "w");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  std::fwrite(text.data(), 1, text.size(), f);
  std::fclose(f);
}

void write_text_rename(const std::string& path, const std::string& text) {
  const std::string tmp = path + ".tmp";
  write_text(tmp, text);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) throw std::runtime_error("cannot rename onto " + path);
}

std::string tail(const std::string& path, int n) {
  const std::string text = read_text(path);
  std::deque<std::string> lines;
  std::istringstream in(text);
  std::string l;
  while (std::getline(in, l)) {
    lines.push_back(l);
    if (static_cast<int>(lines.size()) > n) lines.pop_front();
  }
  std::string out;
  for (const auto& x : lines) out += "    " + x + "\n";
  return out;
}

bool can_connect_unix(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_un a{};
  a.sun_family = AF_UNIX;
  std::strncpy(a.sun_path, path.c_str(), sizeof a.sun_path - 1);
  const bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// ---- /proc ----

double cpu_seconds(int pid) {
  const std::string text = read_text("/proc/" + std::to_string(pid) + "/stat");
  // Field 2 (comm) may hold spaces: parse after its closing parenthesis. utime, stime: fields 14, 15.
  const size_t rp = text.rfind(')');
  if (rp == std::string::npos) return -1;
  std::istringstream in(text.substr(rp + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15; ++i) {
    if (!(in >> field)) return -1;
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

long vm_rss_kib(int pid) {
  std::istringstream in(read_text("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return -1;
}

int fd_count(int pid) {
  std::error_code ec;
  int n = 0;
  for (std::filesystem::directory_iterator it("/proc/" + std::to_string(pid) + "/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++n;
  }
  return ec ? -1 : n;
}

// ---- kernel log ----

std::vector<Kernel> read_kernels(const std::string& path) {
  std::vector<Kernel> out;
  std::istringstream in(read_text(path));
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream ls(line);
    Kernel k;
    if (ls >> k.pid >> k.device >> k.start >> k.end >> k.api) out.push_back(k);
  }
  return out;
}

std::vector<Kernel> kernels_of(const std::vector<Kernel>& all, int pid) {
  std::vector<Kernel> out;
  for (const Kernel& k : all) {
    if (k.pid == pid) out.push_back(k);
  }
  return out;
}

Micros union_length(std::vector<Interval> iv, Micros from, Micros to) {
  std::sort(iv.begin(), iv.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  Micros total = 0, cur_s = 0, cur_e = INT64_MIN;
  for (Interval i : iv) {
    i.start = std::max(i.start, from);
    i.end = std::min(i.end, to);
    if (i.end <= i.start) continue;
    if (i.start > cur_e) {
      if (cur_e != INT64_MIN) total += cur_e - cur_s;
      cur_s = i.start;
      cur_e = i.end;
    } else {
      cur_e = std::max(cur_e, i.end);
    }
  }
  if (cur_e != INT64_MIN) total += cur_e - cur_s;
  return total;
}

std::string ShareReport::describe() const {
  std::string s = "over " + std::to_string((t1 - t0) / 1000) + " ms:";
  for (const auto& [name, v] : share) {
    char buf[96];
    std::snprintf(buf, sizeof buf, " %s=%.4f (%lld ms)", name.c_str(), v, static_cast<long long>(busy.at(name) / 1000));
    s += buf;
  }
  return s;
}

ShareReport period_shares(const std::vector<Kernel>& all,
                          const std::map<std::string, std::vector<int>>& pids_of_client, Micros from, Micros to) {
  ShareReport r;
  r.t0 = from;
  r.t1 = to;
  Micros total = 0;
  for (const auto& [name, pids] : pids_of_client) {
    std::vector<Interval> iv;
    for (const Kernel& k : all) {
      if (std::find(pids.begin(), pids.end(), k.pid) != pids.end()) iv.push_back({k.start, k.end});
    }
    r.busy[name] = to > from ? union_length(iv, from, to) : 0;
    total += r.busy[name];
  }
  for (const auto& [name, b] : r.busy) r.share[name] = total > 0 ? static_cast<double>(b) / total : 0;
  return r;
}

ShareReport common_period_shares(const std::vector<Kernel>& all,
                                 const std::map<std::string, std::vector<int>>& pids_of_client) {
  Micros t0 = INT64_MIN, t1 = INT64_MAX;
  for (const auto& [name, pids] : pids_of_client) {
    Micros first = INT64_MAX, last = INT64_MIN;
    for (const Kernel& k : all) {
      if (std::find(pids.begin(), pids.end(), k.pid) == pids.end()) continue;
      first = std::min(first, k.start);
      last = std::max(last, k.end);
    }
    if (first == INT64_MAX) {  // a group that never ran: no common period
      t0 = t1 = 0;
      break;
    }
    t0 = std::max(t0, first);
    t1 = std::min(t1, last);
  }
  if (t0 == INT64_MIN || t1 < t0) t0 = t1 = 0;
  return period_shares(all, pids_of_client, t0, t1);
}

Micros longest_gap(const std::vector<Kernel>& all, const std::vector<int>& pids, Micros t0, Micros t1,
                   Micros* gap_start) {
  std::vector<Kernel> ks;
  for (const Kernel& k : all) {
    if (std::find(pids.begin(), pids.end(), k.pid) != pids.end()) ks.push_back(k);
  }
  std::sort(ks.begin(), ks.end(), [](const Kernel& a, const Kernel& b) { return a.start < b.start; });
  Micros worst = 0, worst_at = t0;
  auto consider = [&](Micros from, Micros to) {
    // Only the part inside [t0, t1] counts: a wait that began before t0 is measured from t0.
    from = std::max(from, t0);
    to = std::min(to, t1);
    if (to <= from) return;  // does not intersect [t0, t1]
    if (to - from > worst) {
      worst = to - from;
      worst_at = from;
    }
  };
  Micros busy_until = INT64_MIN;
  for (const Kernel& k : ks) {
    if (busy_until == INT64_MIN) {
      consider(t0, k.start);
    } else {
      consider(busy_until, k.start);
    }
    busy_until = std::max(busy_until, k.end);
  }
  consider(busy_until == INT64_MIN ? t0 : busy_until, t1);
  if (gap_start != nullptr) *gap_start = worst_at;
  return worst;
}

Micros longest_idle(const std::vector<Kernel>& all, Micros from, Micros to) {
  std::vector<Interval> iv;
  for (const Kernel& k : all) {
    if (k.end > from && k.start < to) iv.push_back({std::max(k.start, from), std::min(k.end, to)});
  }
  std::sort(iv.begin(), iv.end(), [](const Interval& a, const Interval& b) { return a.start < b.start; });
  Micros longest = 0, covered_to = from;
  for (const Interval& i : iv) {
    longest = std::max(longest, i.start - covered_to);
    covered_to = std::max(covered_to, i.end);
  }
  return std::max(longest, to - covered_to);
}

int count_cross_overlaps(const std::vector<Kernel>& all, const std::map<int, std::string>& group_of_pid,
                         std::string* examples) {
  std::vector<Kernel> ks = all;
  std::sort(ks.begin(), ks.end(), [](const Kernel& a, const Kernel& b) { return a.start < b.start; });
  auto group = [&](int pid) {
    auto it = group_of_pid.find(pid);
    return it == group_of_pid.end() ? "pid" + std::to_string(pid) : it->second;
  };
  int n = 0;
  for (size_t i = 0; i < ks.size(); ++i) {
    for (size_t j = i + 1; j < ks.size() && ks[j].start < ks[i].end; ++j) {
      if (group(ks[i].pid) == group(ks[j].pid)) continue;
      if (++n <= 5 && examples != nullptr) {
        *examples += "  " + group(ks[i].pid) + " [" + std::to_string(ks[i].start) + ", " + std::to_string(ks[i].end) +
                     "] vs " + group(ks[j].pid) + " [" + std::to_string(ks[j].start) + ", " +
                     std::to_string(ks[j].end) + "]\n";
      }
    }
  }
  return n;
}

// ---- App ----

namespace {
nlohmann::json parse_json_or_empty(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  return j.is_discarded() ? nlohmann::json::object() : j;
}
}  // namespace

nlohmann::json App::result() const {
  std::istringstream in(read_text(out_path));
  std::string line, last;
  while (std::getline(in, line)) {
    if (!line.empty() && line[0] == '{') last = line;
  }
  return parse_json_or_empty(last);
}

nlohmann::json App::hook_stats() const { return parse_json_or_empty(read_text(stats_path)); }

// ---- fixture ----

namespace {
std::map<std::string, std::string> sanitizer_env();
}  // namespace


void GemTest::SetUp() {
  const char* b = std::getenv("GEM_BUILD");
  build_ = b != nullptr && *b != '\0' ? b : "build";
  build_ = std::filesystem::absolute(build_).string();
  for (const char* rel : {"bin/gem-schd", "bin/gem-pmgr", "lib/libgemhook.so.1", "fake-cuda/libcuda.so.1",
                          "fake-cuda/fake-cuda-app"}) {
    ASSERT_EQ(access(bin(rel).c_str(), R_OK), 0) << bin(rel) << " missing: build it or set GEM_BUILD";
  }
  char tmpl[] = "/tmp/gem-integ-XXXXXX";
  ASSERT_NE(mkdtemp(tmpl), nullptr) << std::strerror(errno);
  dir_ = tmpl;
  // Once per run: can the hook be preloaded into fake-cuda-app at all? (Under SANITIZE=1 the ASan
  // runtime looks up its interceptors' targets with dlsym(RTLD_NEXT, ...) through the hook's dlsym
  // before main.) Fail fast with the reason instead of every test timing out.
  static const std::string preload_problem = [this] {
    SpawnOptions o;
    o.argv = {bin("fake-cuda/fake-cuda-app"), "--print-uuid"};
    o.env = sanitizer_env();
    o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
    o.env["LD_PRELOAD"] = bin("lib/libgemhook.so.1");
    o.unset_env = {"POD_NAME"};
    o.stdout_path = path("preload-check.out");
    o.stderr_path = path("preload-check.err");
    Process p(o);
    const auto st = p.wait_for(10 * slack());
    if (st && exited_ok(*st)) return std::string();
    return std::string("fake-cuda-app --print-uuid with LD_PRELOAD=libgemhook.so.1 ") +
           (st ? describe_status(*st) : std::string("hangs (killed after 10 s)")) + "\n" +
           tail(path("preload-check.err"), 10);
  }();
  ASSERT_TRUE(preload_problem.empty()) << preload_problem;
}

void GemTest::TearDown() {
  apps_.clear();  // stops whatever still runs
  pmgrs_.clear();
  schd_.reset();
  if (HasFailure()) {
    std::string logs;
    for (const char* name : {"schd.log"}) logs += std::string("  ") + name + ":\n" + tail(path(name), 25);
    for (const auto& e : std::filesystem::directory_iterator(dir_)) {
      const std::string f = e.path().filename().string();
      if (f.rfind("pmgr-", 0) == 0 && f.size() > 4 && f.substr(f.size() - 4) == ".log") {
        logs += "  " + f + ":\n" + tail(e.path().string(), 15);
      }
      if (f.size() > 4 && f.substr(f.size() - 4) == ".err" && std::filesystem::file_size(e.path()) > 0) {
        logs += "  " + f + ":\n" + tail(e.path().string(), 10);
      }
    }
    std::fprintf(stderr, "[ logs of %s ]\n%s", dir_.c_str(), logs.c_str());
  }
  if (!dir_.empty() && std::getenv("GEM_KEEP_TMP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  } else if (!dir_.empty()) {
    std::fprintf(stderr, "kept %s\n", dir_.c_str());
  }
}

std::string GemTest::config_text(const std::vector<ClientConfig>& clients) {
  std::string s = "# written by the integration tests\n" + std::to_string(clients.size()) + "\n";
  for (const auto& c : clients) {
    char line[256];
    std::snprintf(line, sizeof line, "%s %g %g %s%s%s\n", c.name.c_str(), c.request, c.limit, c.gpu_mem.c_str(),
                  c.options.empty() ? "" : " ", c.options.c_str());
    s += line;
  }
  return s;
}

void GemTest::write_config(const std::vector<ClientConfig>& clients) {
  write_text(path("resource-config.txt"), config_text(clients));
}

namespace {
// Environment every child gets under SANITIZE=1: the hook is preloaded into an ASan program, and
// the ASan runtime would otherwise refuse it for not coming first.
std::map<std::string, std::string> sanitizer_env() {
  std::map<std::string, std::string> env;
  if (sanitized()) {
    const char* prev = std::getenv("ASAN_OPTIONS");
    std::string opts = prev != nullptr ? std::string(prev) + ":" : "";
    env["ASAN_OPTIONS"] = opts + "verify_asan_link_order=0";
  }
  return env;
}
}  // namespace

Process& GemTest::start_scheduler(int base_quota, int min_quota, int window, std::vector<std::string> extra) {
  SchedulerOptions s;
  s.base_quota = base_quota;
  s.min_quota = min_quota;
  s.window = window;
  s.extra = std::move(extra);
  return start_scheduler(s);
}

SchedulerOptions users_scheduler_options() {
  SchedulerOptions s;
  s.base_quota = static_cast<int>(gem::sched::kDefaultBaseQuota / 1000);
  s.min_quota = static_cast<int>(gem::sched::kDefaultMinQuota / 1000);
  s.window = static_cast<int>(gem::sched::kDefaultWindow / 1000);
  return s;
}

Process& GemTest::start_scheduler(const SchedulerOptions& s) {
  SpawnOptions o;
  const std::string sock = s.socket.empty() ? path("schd.sock") : s.socket;
  o.argv = s.wrapper;
  for (const std::string& a : {bin("bin/gem-schd"), std::string("--socket"), sock, std::string("--config"),
                               path("resource-config.txt"), std::string("--base_quota"), std::to_string(s.base_quota),
                               std::string("--min_quota"), std::to_string(s.min_quota), std::string("--window"),
                               std::to_string(s.window)}) {
    o.argv.push_back(a);
  }
  if (s.stats) {
    o.argv.push_back("--stats");
    o.argv.push_back(path("stats.json"));
  }
  o.argv.insert(o.argv.end(), s.extra.begin(), s.extra.end());
  o.env = sanitizer_env();
  for (const auto& [k, v] : s.env) o.env[k] = v;
  o.stderr_path = path("schd.log");
  o.stdout_path = path("schd.log");
  schd_ = std::make_unique<Process>(o);
  const bool up = wait_until(10 * slack(), [&] { return can_connect_unix(sock) || !schd_->alive(); });
  EXPECT_TRUE(up && schd_->alive()) << "gem-schd did not start:\n" << tail(path("schd.log"));
  return *schd_;
}

Process& GemTest::start_pod_manager(const std::string& client) { return start_pod_manager(client, PodManagerOptions{}); }

Process& GemTest::start_pod_manager(const std::string& client, const PodManagerOptions& po) {
  SpawnOptions o;
  o.argv = {bin("bin/gem-pmgr"), "--name", client, "--socket", pmgr_socket(client)};
  if (po.default_scheduler) {
    o.argv.push_back("--scheduler");
    o.argv.push_back(path("schd.sock"));
  }
  o.argv.insert(o.argv.end(), po.extra.begin(), po.extra.end());
  o.env = sanitizer_env();
  o.stderr_path = path("pmgr-" + client + ".log");
  o.stdout_path = o.stderr_path;
  auto& p = pmgrs_[client];
  p = std::make_unique<Process>(o);
  const bool up = wait_until(10 * slack(), [&] { return can_connect_unix(pmgr_socket(client)) || !p->alive(); });
  EXPECT_TRUE(up && p->alive()) << "gem-pmgr " << client << " did not start:\n" << tail(o.stderr_path);
  return *p;
}

App& GemTest::start_app(const AppOptions& a) {
  const int n = app_seq_++;
  auto app = std::make_unique<App>();
  app->client = a.client;
  const std::string base = path("app" + std::to_string(n) + (a.client.empty() ? "" : "-" + a.client));
  app->out_path = base + ".out";
  app->err_path = base + ".err";
  app->stats_path = base + ".hook.json";
  SpawnOptions o;
  o.argv = {bin("fake-cuda/fake-cuda-app"), "--seconds", std::to_string(a.seconds), "--kernel_us",
            std::to_string(a.kernel_us), "--threads", std::to_string(a.threads)};
  if (!a.api.empty()) {
    o.argv.push_back("--api");
    o.argv.push_back(a.api);
  }
  if (a.ptsz) o.argv.push_back("--ptsz");
  if (a.device != 0) {
    o.argv.push_back("--device");
    o.argv.push_back(std::to_string(a.device));
  }
  if (a.alternate > 0) {
    o.argv.push_back("--alternate");
    o.argv.push_back(std::to_string(a.alternate));
  }
  if (a.idle_every > 0) {
    o.argv.push_back("--idle_ms_every");
    o.argv.push_back(std::to_string(a.idle_every) + ":" + std::to_string(a.idle_ms));
  }
  if (a.sync_every > 0) {
    o.argv.push_back("--sync_every");
    o.argv.push_back(std::to_string(a.sync_every));
  }
  if (!a.mem_steps.empty()) {
    o.argv = {bin("fake-cuda/fake-mem-app")};
    o.argv.insert(o.argv.end(), a.mem_steps.begin(), a.mem_steps.end());
  }
  if (!a.command.empty()) o.argv = a.command;
  o.env = sanitizer_env();
  o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
  o.env["LD_PRELOAD"] = bin("lib/libgemhook.so.1");
  o.env["FAKE_CUDA_LOG"] = path("kernels.log");
  o.env["GEMINI_MAX_INFLIGHT"] = "8";
  o.env["GEMINI_STATS_FILE"] = app->stats_path;
  o.unset_env = {"POD_NAME", "POD_MANAGER_SOCKET", "POD_MANAGER_IP", "POD_MANAGER_PORT", "GEMINI_FAIL_CLOSED",
                 "GEMINI_IDLE_MS", "GEMINI_LOG_LEVEL", "FAKE_CUDA_DEVICES"};
  if (!a.client.empty()) {
    o.env["POD_NAME"] = a.client;
    o.env["POD_MANAGER_SOCKET"] = a.pmgr_socket.empty() ? pmgr_socket(a.client) : a.pmgr_socket;
  }
  for (const auto& [k, v] : a.env) o.env[k] = v;
  o.stdout_path = app->out_path;
  o.stderr_path = app->err_path;
  app->started_us = mono_us();
  app->proc = std::make_unique<Process>(o);
  apps_.push_back(std::move(app));
  return *apps_.back();
}

std::vector<nlohmann::json> App::steps() const {
  std::vector<nlohmann::json> out;
  std::istringstream in(read_text(out_path));
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] != '{') continue;
    auto j = nlohmann::json::parse(line, nullptr, false);
    if (!j.is_discarded()) out.push_back(j);
  }
  return out;
}

void GemTest::wait_apps(double seconds) {
  for (auto& a : apps_) {
    if (a->proc->status()) continue;
    auto st = a->proc->wait_for(seconds);
    ASSERT_TRUE(st.has_value()) << "fake-cuda-app (" << a->client << ") still running after " << seconds << " s";
    EXPECT_TRUE(exited_ok(*st)) << "fake-cuda-app (" << a->client << "): " << describe_status(*st) << "\n"
                                << tail(a->err_path);
  }
}

nlohmann::json GemTest::stats() const { return parse_json_or_empty(read_text(path("stats.json"))); }

std::map<std::string, std::vector<int>> GemTest::pids_by_client() const {
  std::map<std::string, std::vector<int>> m;
  for (const auto& a : apps_) m[a->client].push_back(a->proc->pid());
  return m;
}

std::map<int, std::string> GemTest::client_by_pid() const {
  std::map<int, std::string> m;
  for (const auto& a : apps_) m[a->proc->pid()] = a->client;
  return m;
}

void GemTest::stop_daemons_expect_clean() {
  for (auto& [name, p] : pmgrs_) {
    EXPECT_TRUE(p->alive()) << "gem-pmgr " << name << " died: " << describe_status(*p->status());
    const int st = p->stop();
    EXPECT_TRUE(exited_ok(st)) << "gem-pmgr " << name << " on SIGTERM: " << describe_status(st) << "\n"
                               << tail(path("pmgr-" + name + ".log"));
  }
  if (schd_) {
    EXPECT_TRUE(schd_->alive()) << "gem-schd died: " << describe_status(*schd_->status());
    // Under the sanitizers a gem-schd that held 10^6 secrets or clients frees them slowly (over 3 s on a
    // loaded 2-core machine, EdgeLoadTest): the grace scales like every other bound here.
    const int st = schd_->stop(3.0 * slack());
    EXPECT_TRUE(exited_ok(st)) << "gem-schd on SIGTERM: " << describe_status(st) << "\n" << tail(path("schd.log"));
  }
}

}  // namespace gemtest
