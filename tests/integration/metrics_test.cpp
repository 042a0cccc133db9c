// Metrics (issue 10) from the real daemons, scraped over HTTP and parsed as Prometheus would:
// gem-schd's per-client numbers agree with its --stats file and with the configured shares, the
// pod managers count their processes and grants, config reloads and refusals are counted, and the
// GPU's health follows the stand-in NVML's XID events and lost GPU. No timing asserts beyond
// "within a few seconds".
#include <cmath>
#include <fstream>

#include "gem/protocol.h"
#include "harness.h"
#include "prom_scrape.h"

namespace gemtest {
namespace {

constexpr const char* kGpu = "GPU-fa4e0000-0000-0000-0000-000000000000";

class MetricsTest : public GemTest {
 protected:
  /// gem-schd with metrics on a free loopback port, the stand-in NVML and `env`; returns the port.
  int start_scheduler_with_metrics(const std::map<std::string, std::string>& env = {}) {
    SchedulerOptions o;
    o.extra = {"--metrics_port", "auto", "--gpu", kGpu};
    o.env = env;
    o.env["LD_LIBRARY_PATH"] = bin("fake-cuda");
    start_scheduler(o);
    const int port = metrics_port_from_log(path("schd.log"), 5 * slack());
    EXPECT_GT(port, 0) << tail(path("schd.log"));
    return port;
  }
  int start_pod_manager_with_metrics(const std::string& client) {
    PodManagerOptions o;
    o.extra = {"--metrics_port", "auto"};
    start_pod_manager(client, o);
    const int port = metrics_port_from_log(path("pmgr-" + client + ".log"), 5 * slack());
    EXPECT_GT(port, 0) << tail(path("pmgr-" + client + ".log"));
    return port;
  }
  /// Scrapes until `pred` holds on a well-formed scrape (or `seconds` pass); the last scrape.
  template <typename F>
  PromScrape scrape_until(int port, double seconds, F&& pred) {
    PromScrape s;
    wait_until(seconds * slack(), [&] {
      s = scrape(port);
      return s.status == 200 && s.errors.empty() && pred(s);
    });
    return s;
  }
  static std::string errors_of(const PromScrape& s) {
    std::string out;
    for (const std::string& e : s.errors) out += "  " + e + "\n";
    return out + s.text.substr(0, 4000);
  }
};

TEST_F(MetricsTest, SchedulerAndPodManagersReportTheSharedRun) {
  write_config({{"client1", 0.3, 1.0, "1GiB"}, {"client2", 0.7, 1.0}});
  const int schd = start_scheduler_with_metrics();
  const int pm1 = start_pod_manager_with_metrics("client1");
  const int pm2 = start_pod_manager_with_metrics("client2");
  AppOptions a;
  a.seconds = 6;
  a.client = "client1";
  start_app(a);
  a.client = "client2";
  start_app(a);

  // While they run: both connected, one launch process each, the token held by someone.
  const std::map<std::string, std::string> c1{{"UUID", kGpu}, {"client", "client1"}};
  const std::map<std::string, std::string> c2{{"UUID", kGpu}, {"client", "client2"}};
  PromScrape s = scrape_until(schd, 5, [&](const PromScrape& x) {
    return x.value("gem_client_connected", c1) == 1.0 && x.value("gem_client_connected", c2) == 1.0 &&
           x.value("gem_client_grants_total", c1) > 0.0 && x.value("gem_client_grants_total", c2) > 0.0;
  });
  ASSERT_EQ(s.status, 200) << "no answer from gem-schd's /metrics";
  EXPECT_TRUE(s.errors.empty()) << errors_of(s);
  EXPECT_NE(s.content_type.find("text/plain"), std::string::npos) << s.content_type;
  EXPECT_EQ(s.value("gem_client_connected", c1), 1.0) << s.text;
  EXPECT_EQ(s.value("gem_client_request_ratio", c1), 0.3);
  EXPECT_EQ(s.value("gem_client_request_ratio", c2), 0.7);
  EXPECT_EQ(s.value("gem_client_limit_ratio", c2), 1.0);
  EXPECT_EQ(s.value("gem_client_memory_limit_bytes", c1), 1073741824.0);
  EXPECT_EQ(s.value("gem_clients_connected", {{"UUID", kGpu}}), 2.0);
  EXPECT_EQ(s.types["gem_client_gpu_seconds_total"], "counter");
  EXPECT_EQ(s.types["gem_client_token_wait_seconds"], "histogram");
  // Which build answers (issue 20): gem_build_info, as the Prometheus convention has it.
  for (const int port : {schd, pm1}) {
    const PromScrape b = port == schd ? s : scrape(port);
    const auto info = b.all("gem_build_info");
    ASSERT_EQ(info.size(), 1u) << b.text;
    EXPECT_EQ(info[0].value, 1.0);
    EXPECT_FALSE(info[0].labels.at("version").empty());
    EXPECT_EQ(info[0].labels.at("protocol"), std::to_string(gem::proto::kVersion));
  }
  for (const int pm : {pm1, pm2}) {
    const PromScrape p = scrape_until(pm, 5, [](const PromScrape& x) {
      return x.value("gem_pmgr_processes", {{"kind", "launch"}}) == 1.0;
    });
    EXPECT_TRUE(p.errors.empty()) << errors_of(p);
    EXPECT_EQ(p.value("gem_pmgr_processes", {{"kind", "launch"}}), 1.0) << p.text;
    EXPECT_EQ(p.all("gem_pmgr_scheduler_up").size(), 1u) << p.text;
    EXPECT_EQ(p.value("gem_pmgr_scheduler_up"), 1.0) << p.text;
  }

  wait_apps(6 + 20 * slack());
  sleep_ms(1500);  // the last releases are charged, the stats file rewritten (every 500 ms)
  s = scrape(schd);
  ASSERT_TRUE(s.errors.empty()) << errors_of(s);
  const nlohmann::json st = stats();
  double total = 0;
  for (const auto* c : {&c1, &c2}) {
    const std::string name = c->at("client");
    const auto used = s.value("gem_client_gpu_seconds_total", *c);
    ASSERT_TRUE(used.has_value()) << s.text;
    total += *used;
    // The same numbers as --stats: what a user sees in either place agrees.
    EXPECT_NEAR(*used, st["clients"][name]["used_us_total"].get<double>() / 1e6, 0.001) << name;
    EXPECT_EQ(s.value("gem_client_grants_total", *c), st["clients"][name]["grants"].get<double>()) << name;
    EXPECT_EQ(s.value("gem_client_request_ratio", *c), st["clients"][name]["request"].get<double>()) << name;
    EXPECT_EQ(s.value("gem_client_limit_ratio", *c), st["clients"][name]["limit"].get<double>()) << name;
    EXPECT_EQ(s.value("gem_client_memory_limit_bytes", *c), st["clients"][name]["gpu_mem"].get<double>()) << name;
    EXPECT_EQ(s.value("gem_client_revocations_total", *c), st["clients"][name]["revocations"].get<double>()) << name;
    EXPECT_EQ(s.value("gem_client_connected", *c), st["clients"][name]["connected"].get<bool>() ? 1.0 : 0.0) << name;
    // Every client waited for the token at least once, and its histograms add up.
    EXPECT_GT(s.value("gem_client_token_wait_seconds_count", *c).value_or(0), 0.0) << s.text;
    EXPECT_GE(s.value("gem_client_token_wait_seconds_sum", *c).value_or(-1), 0.0);
    EXPECT_TRUE(s.value("gem_client_handoff_seconds_count", *c).has_value());
  }
  // Charged GPU time split about 0.3 / 0.7 (the scheduling itself is tested in shares_test).
  ASSERT_GT(total, 3.0) << s.text;
  EXPECT_NEAR(*s.value("gem_client_gpu_seconds_total", c1) / total, 0.3, 0.05 + share_tolerance());
  const double handoffs = *s.value("gem_client_handoff_seconds_count", c1) + *s.value("gem_client_handoff_seconds_count", c2);
  EXPECT_GT(handoffs, 0.0) << "two busy clients never handed the token over";
  const double busy = s.value("gem_gpu_busy_ratio", {{"UUID", kGpu}}).value_or(-1);
  EXPECT_GE(busy, 0.0);
  EXPECT_LE(busy, 1.0);

  for (const int pm : {pm1, pm2}) {
    const PromScrape p = scrape_until(pm, 5, [](const PromScrape& x) {
      return x.value("gem_pmgr_processes", {{"kind", "launch"}}) == 0.0;
    });
    EXPECT_EQ(p.value("gem_pmgr_processes", {{"kind", "launch"}}), 0.0) << p.text;
    EXPECT_GT(p.value("gem_pmgr_grants_total").value_or(0), 0.0) << p.text;
    EXPECT_GT(p.value("gem_pmgr_token_wait_seconds_count").value_or(0), 0.0) << p.text;
    EXPECT_EQ(p.value("gem_pmgr_revocations_total"), 0.0) << p.text;
  }
  stop_daemons_expect_clean();
}

TEST_F(MetricsTest, ConfigReloadsAndRefusalsAreCounted) {
  write_config({{"client1", 0.3, 1.0}});
  const int schd = start_scheduler_with_metrics();
  const std::map<std::string, std::string> gpu{{"UUID", kGpu}};
  PromScrape s = scrape(schd);
  ASSERT_TRUE(s.errors.empty()) << errors_of(s);
  EXPECT_EQ(s.value("gem_config_reloads_total", gpu), 0.0);
  EXPECT_EQ(s.value("gem_config_reload_errors_total", gpu), 0.0);
  write_text_rename(path("resource-config.txt"), "2\nclient1 0.8 1.0 0\nclient2 0.8 1.0 0\n");  // REQUESTs over 1
  s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_config_reload_errors_total", gpu) == 1.0; });
  EXPECT_EQ(s.value("gem_config_reload_errors_total", gpu), 1.0) << tail(path("schd.log"));
  EXPECT_EQ(s.value("gem_client_request_ratio", {{"client", "client1"}}), 0.3) << "the last good config stays";
  write_text_rename(path("resource-config.txt"), config_text({{"client1", 0.4, 1.0}, {"client2", 0.5, 1.0}}));
  s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_config_reloads_total", gpu) == 1.0; });
  EXPECT_EQ(s.value("gem_config_reloads_total", gpu), 1.0) << tail(path("schd.log"));
  EXPECT_EQ(s.value("gem_client_request_ratio", {{"client", "client2"}}), 0.5) << s.text;
  EXPECT_EQ(s.value("gem_clients", gpu), 2.0);
  stop_daemons_expect_clean();
}

// Issue 19: a client gem-schd refuses is held, not run unthrottled. Its app launches nothing while
// refused, the refusal is counted and shown (and logged once with the fix), and the app runs under
// the token once the config admits the client.
TEST_F(MetricsTest, ARefusedClientIsHeldAndShownUntilAdmitted) {
  write_config({{"client1", 0.3, 1.0}});
  const int schd = start_scheduler_with_metrics();
  start_pod_manager("stranger");
  AppOptions a;
  a.seconds = 1;
  a.client = "stranger";
  App& app = start_app(a);
  const std::map<std::string, std::string> refused{{"UUID", kGpu}, {"client", "stranger"}, {"reason", "unknown_client"}};
  PromScrape s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_client_refused", refused) == 1.0; });
  EXPECT_EQ(s.value("gem_client_refused", refused), 1.0) << errors_of(s);
  EXPECT_GE(s.value("gem_client_refusals_total", {{"UUID", kGpu}, {"reason", "unknown_client"}}).value_or(0), 1.0);
  // Held for 2.5 s (two more refusals at the 1 s retries): nothing ran, the fix was logged once.
  sleep_ms(2500);
  EXPECT_TRUE(kernels_of(kernels(), app.proc->pid()).empty()) << "the refused client's app ran";
  const std::string log = read_text(path("pmgr-stranger.log"));
  int fixes = 0;
  for (size_t p = log.find("add the client to gem-schd's resource-config.txt"); p != std::string::npos;
       p = log.find("add the client to gem-schd's resource-config.txt", p + 1)) {
    ++fixes;
  }
  EXPECT_EQ(fixes, 1) << "the refusal and its fix are logged once, not at every retry:\n" << tail(path("pmgr-stranger.log"));
  s = scrape_until(schd, 5, [&](const PromScrape& x) {
    return x.value("gem_client_refusals_total", {{"UUID", kGpu}, {"reason", "unknown_client"}}).value_or(0) >= 2;
  });
  EXPECT_GE(s.value("gem_client_refusals_total", {{"UUID", kGpu}, {"reason", "unknown_client"}}).value_or(0), 2.0)
      << "the held pod manager asks again";

  write_text_rename(path("resource-config.txt"), config_text({{"client1", 0.3, 1.0}, {"stranger", 0.3, 1.0}}));
  wait_apps(1 + 20 * slack());
  const auto hs = app.hook_stats();
  EXPECT_GT(app.result().value("launches", 0LL), 0) << read_text(app.out_path);
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0) << "the refused client ran unthrottled: " << hs.dump();
  EXPECT_FALSE(kernels_of(kernels(), app.proc->pid()).empty()) << "the admitted client's app never ran";
  s = scrape_until(schd, 5, [&](const PromScrape& x) { return !x.value("gem_client_refused", refused).has_value(); });
  EXPECT_FALSE(s.value("gem_client_refused", refused).has_value()) << "an admitted client is no longer shown as refused\n" << s.text.substr(0, 3000);
  stop_daemons_expect_clean();
}

TEST_F(MetricsTest, GpuHealthFollowsNvmlXidEventsAndALostGpu) {
  write_config({{"client1", 0.3, 1.0}});
  const std::string events = path("nvml-events.txt");
  write_text(events, "");
  const int schd = start_scheduler_with_metrics({{"FAKE_NVML_EVENTS", events}});
  const std::map<std::string, std::string> gpu{{"UUID", kGpu}};
  PromScrape s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_gpu_health_watched", gpu) == 1.0; });
  EXPECT_EQ(s.value("gem_gpu_health_watched", gpu), 1.0) << tail(path("schd.log"));
  EXPECT_EQ(s.value("gem_gpu_healthy", gpu), 1.0);
  EXPECT_EQ(s.value("gem_gpu_xid_errors_total", gpu), 0.0);
  // With NVML the GPU is also named by its index, as dcgm-exporter's gpu label (device 0 here).
  EXPECT_EQ(s.value("gem_gpu_healthy", {{"UUID", kGpu}, {"gpu", "0"}}), 1.0) << s.text.substr(0, 2000);

  std::ofstream(events, std::ios::app) << "xid 0 79\n";
  s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_gpu_xid_errors_total", gpu) == 1.0; });
  EXPECT_EQ(s.value("gem_gpu_xid_errors_total", gpu), 1.0) << tail(path("schd.log"));
  EXPECT_EQ(s.value("gem_gpu_last_xid", gpu), 79.0);
  EXPECT_EQ(s.value("gem_gpu_healthy", gpu), 0.0);
  EXPECT_EQ(s.value("gem_gpu_lost", gpu), 0.0);

  std::ofstream(events, std::ios::app) << "lost 0\n";
  s = scrape_until(schd, 5, [&](const PromScrape& x) { return x.value("gem_gpu_lost", gpu) == 1.0; });
  EXPECT_EQ(s.value("gem_gpu_lost", gpu), 1.0) << tail(path("schd.log"));
  EXPECT_TRUE(wait_until(3 * slack(), [&] { return stats().value("health", nlohmann::json::object()).value("lost", false); }))
      << "the --stats file does not say the GPU is lost: " << stats().dump();
  EXPECT_NE(read_text(path("schd.log")).find("lost"), std::string::npos);

  // A lost GPU leaves nobody waiting on gem-schd: a client still gets the token and finishes.
  start_pod_manager("client1");
  AppOptions a;
  a.seconds = 1;
  a.client = "client1";
  start_app(a);
  wait_apps(1 + 20 * slack());
  stop_daemons_expect_clean();
}

TEST_F(MetricsTest, EndpointFlagsAreChecked) {
  write_config({{"client1", 0.3, 1.0}});
  auto run = [&](const std::vector<std::string>& extra, const std::string& log) {
    SpawnOptions o;
    o.argv = {bin("bin/gem-schd"), "--socket", path("x.sock"), "--config", path("resource-config.txt")};
    o.argv.insert(o.argv.end(), extra.begin(), extra.end());
    o.stderr_path = o.stdout_path = path(log);
    Process p(o);
    const auto st = p.wait_for(10 * slack());
    return st ? *st : -1;
  };
  int st = run({"--metrics_port", "70000"}, "bad-port.log");
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << describe_status(st) << tail(path("bad-port.log"));
  EXPECT_NE(read_text(path("bad-port.log")).find("--metrics_port"), std::string::npos);
  // An address that is not this machine's cannot be bound: an error at start, not silence.
  st = run({"--metrics_port", "auto", "--metrics_address", "192.0.2.1"}, "bad-address.log");
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 1) << describe_status(st) << tail(path("bad-address.log"));
  EXPECT_NE(read_text(path("bad-address.log")).find("metrics: cannot listen on 192.0.2.1"), std::string::npos)
      << tail(path("bad-address.log"));
}

}  // namespace
}  // namespace gemtest
