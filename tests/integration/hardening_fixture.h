// The fixture of the issue-6 hardening tests (hardening_test.cpp, flood_test.cpp,
// limits_test.cpp): two real clients under the real daemons, helpers to find the holder, and the
// check that gating came back after a disturbance. Test-only; one translation unit per file.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <thread>

#include "harness.h"
#include "raw_client.h"

namespace gemtest {

namespace proto = gem::proto;

inline constexpr int kQuotaMs = 30;        // --base_quota of these tests
inline constexpr int kLeaseGraceMs = 500;  // gem-schd's default --lease_grace

class HardeningTest : public GemTest {
 protected:
  /// The device UUID the stand-in driver reports for device 0, as the hook sends it.
  std::string fake_uuid() {
    SpawnOptions o;
    o.argv = {bin("fake-cuda/fake-cuda-app"), "--print-uuid"};
    o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
    o.unset_env = {"POD_NAME", "LD_PRELOAD"};
    o.stdout_path = path("uuid.out");
    Process p(o);
    p.wait_for(10);
    std::string s = read_text(path("uuid.out"));
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    const size_t nl = s.rfind('\n');
    return nl == std::string::npos ? s : s.substr(nl + 1);
  }

  /// Waits until `pid` is running kernels (its kernel ended within the last few ms and is the
  /// latest in the log): it holds the token.
  bool wait_holder(int pid, double seconds) {
    return wait_until(seconds, [&] {
      const auto ks = kernels();
      if (ks.empty()) return false;
      const Kernel& last =
          *std::max_element(ks.begin(), ks.end(), [](const Kernel& x, const Kernel& y) { return x.end < y.end; });
      return last.pid == pid && mono_us() - last.end < 5000 * slack();
    });
  }

  std::vector<Kernel> kernels_between(Micros from, Micros to) const {
    std::vector<Kernel> out;
    for (const Kernel& k : kernels()) {
      if (k.start >= from && k.end <= to) out.push_back(k);
    }
    return out;
  }

  /// Two saturating clients a and b, REQUEST 0.5 each, each with its pod manager and one app.
  void start_two_clients(double seconds, const SchedulerOptions& s = {}) {
    write_config({{"a", 0.5, 1.0}, {"b", 0.5, 1.0}});
    start_scheduler(s);
    start_pod_manager("a");
    start_pod_manager("b");
    AppOptions o;
    o.seconds = seconds;
    o.client = "a";
    start_app(o);
    o.client = "b";
    start_app(o);
  }
  App& app_of(const std::string& client) {
    for (auto& a : apps_) {
      if (a->client == client) return *a;
    }
    throw std::runtime_error("no app for " + client);
  }

  /// After a disturbance has ended: the apps finish, the daemons live, and in the last stretch
  /// [from, end] both clients ran kernels and none overlapped (gating is back).
  void expect_gated_again(Micros from, double app_wait) {
    wait_apps(app_wait);
    Micros end = 0;
    for (const Kernel& k : kernels()) end = std::max(end, k.end);
    const auto ks = kernels_between(from, end);
    std::string ex;
    const int overlaps = count_cross_overlaps(ks, client_by_pid(), &ex);
    size_t na = 0, nb = 0;
    for (const Kernel& k : ks) (client_by_pid()[k.pid] == "a" ? na : nb)++;
    std::printf("    afterwards (%lld ms): kernels a %zu, b %zu, overlapping pairs %d\n",
                static_cast<long long>((end - from) / 1000), na, nb, overlaps);
    EXPECT_GT(end - from, 500000) << "the apps ended too soon to tell whether gating came back";
    EXPECT_GT(na, 50u);
    EXPECT_GT(nb, 50u);
    EXPECT_EQ(overlaps, 0) << "the clients were not gated again after the disturbance:\n" << ex;
  }
};

}  // namespace gemtest
