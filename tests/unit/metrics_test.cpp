// The Prometheus text writer (include/gem/prom.h) and gem-schd's metrics rules (scheduler/metrics.h):
// escaping, number formatting, cumulative histograms, and which waits count as hand-offs; gem-pmgr's
// counters (pod-manager/metrics.h); the per-client record both the --stats file and the metrics show.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <set>
#include <string>

#include "../../pod-manager/metrics.h"
#include "../../scheduler/metrics.h"
#include "../../scheduler/stats.h"
#include "gem/prom.h"

namespace {

using gem::prom::Histogram;
using gem::prom::Writer;

TEST(PromWriter, FamiliesOnceLabelsEscapedNumbersPlain) {
  Writer w;
  w.family("gem_x_total", "counter", "Help\nwith a newline.");
  w.sample("gem_x_total", {{"client", "a\"b\\c\nd"}}, 3);
  w.family("gem_x_total", "counter", "again");  // ignored
  w.sample("gem_x_total", {}, 0.25);
  EXPECT_EQ(w.text(),
            "# HELP gem_x_total Help with a newline.\n# TYPE gem_x_total counter\n"
            "gem_x_total{client=\"a\\\"b\\\\c\\nd\"} 3\ngem_x_total 0.25\n");
  EXPECT_EQ(Writer::number(1e12), "1000000000000");
  EXPECT_EQ(Writer::number(1.0 / 0.0), "+Inf");
}

// Series join other exporters' (issue 20): a pod's client ID "namespace/name" also gets the
// kube-state-metrics labels, and a GPU is named as dcgm-exporter names it (NVML index and UUID).
TEST(PromLabels, PodClientsGetNamespaceAndPodGpusIndexAndUuid) {
  using gem::prom::Labels;
  EXPECT_EQ(gem::prom::client_labels("team-a/train-0"),
            (Labels{{"client", "team-a/train-0"}, {"namespace", "team-a"}, {"pod", "train-0"}}));
  for (const char* plain : {"client1", "a/b/c", "/x", "x/", ""}) {
    EXPECT_EQ(gem::prom::client_labels(plain), (Labels{{"client", plain}})) << plain;
  }
  EXPECT_EQ(gem::prom::gpu_labels(2, "GPU-1"), (Labels{{"gpu", "2"}, {"UUID", "GPU-1"}}));
  EXPECT_EQ(gem::prom::gpu_labels(-1, "GPU-1"), (Labels{{"UUID", "GPU-1"}})) << "no NVML: the index is unknown";
  EXPECT_EQ(gem::prom::gpu_labels(0, ""), (Labels{{"gpu", "0"}})) << "gem-schd without --gpu serves device 0";
  EXPECT_EQ(gem::prom::join({{"a", "1"}}, {{"b", "2"}}, {{"c", "3"}}), (Labels{{"a", "1"}, {"b", "2"}, {"c", "3"}}));
}

TEST(SchedMetrics, SeriesCarryTheGpuIndexUuidAndThePodsLabels) {
  gem::sched::SchedMetrics m;
  gem::sched::SchedView v;
  v.gpu = "GPU-x";
  v.health.index = 3;
  v.window = 10000000;
  v.clients.push_back({});
  v.clients.back().name = "ns1/pod-a";
  const std::string text = m.render(v);
  EXPECT_NE(text.find("gem_gpu_busy_ratio{gpu=\"3\",UUID=\"GPU-x\"} 0\n"), std::string::npos) << text;
  EXPECT_NE(text.find("gem_client_share_ratio{gpu=\"3\",UUID=\"GPU-x\",client=\"ns1/pod-a\",namespace=\"ns1\",pod=\"pod-a\"} 0\n"),
            std::string::npos)
      << text;
}

TEST(PromHistogram, BucketsAreCumulativeAndEndWithInf) {
  Histogram h({0.1, 1});
  h.observe(0.05);
  h.observe(0.1);  // on the bound: counted in it (le)
  h.observe(0.5);
  h.observe(7);
  h.observe(-1);  // counted as 0
  Writer w;
  w.histogram("gem_w_seconds", {{"client", "c"}}, h);
  EXPECT_EQ(w.text(),
            "gem_w_seconds_bucket{client=\"c\",le=\"0.1\"} 3\n"
            "gem_w_seconds_bucket{client=\"c\",le=\"1\"} 4\n"
            "gem_w_seconds_bucket{client=\"c\",le=\"+Inf\"} 5\n"
            "gem_w_seconds_sum{client=\"c\"} 7.65\n"
            "gem_w_seconds_count{client=\"c\"} 5\n");
}

// A client that was already waiting when the token came free gets a hand-off; one that asked after
// it was free does not (its wait is all it has).
TEST(SchedMetrics, HandOffOnlyForClientsWaitingWhenTheTokenCameFree) {
  gem::sched::SchedMetrics m;
  m.requested("a", 0);
  m.granted("a", 1000);  // wait 1 ms, no hand-off (nobody held the token before)
  m.holder_is("a", 1000);
  m.requested("b", 2000);
  m.holder_is("", 5000);  // a released at 5 ms
  m.granted("b", 5500);   // hand-off 0.5 ms, wait 3.5 ms
  m.holder_is("b", 5500);
  m.holder_is("", 9000);
  m.requested("a", 9500);  // asked after the token was free
  m.granted("a", 9600);
  m.config_loaded(false);
  gem::sched::SchedView v;
  v.gpu = "GPU-x";
  v.window = 10000000;
  v.uptime = 20000000;
  v.busy_window = 5000000;
  v.clients = {{"a"}, {"b"}};
  v.clients[1].revocations = 1;  // Policy's count, through the client's record
  const std::string text = m.render(v);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("gem_client_handoff_seconds_count{UUID=\"GPU-x\",client=\"a\"} 0")) << text;
  EXPECT_TRUE(has("gem_client_handoff_seconds_count{UUID=\"GPU-x\",client=\"b\"} 1")) << text;
  EXPECT_TRUE(has("gem_client_handoff_seconds_sum{UUID=\"GPU-x\",client=\"b\"} 0.0005")) << text;
  EXPECT_TRUE(has("gem_client_token_wait_seconds_count{UUID=\"GPU-x\",client=\"a\"} 2")) << text;
  EXPECT_TRUE(has("gem_client_token_wait_seconds_sum{UUID=\"GPU-x\",client=\"b\"} 0.0035")) << text;
  EXPECT_TRUE(has("gem_client_revocations_total{UUID=\"GPU-x\",client=\"b\"} 1")) << text;
  EXPECT_TRUE(has("gem_config_reload_errors_total{UUID=\"GPU-x\"} 1")) << text;
  EXPECT_TRUE(has("gem_gpu_busy_ratio{UUID=\"GPU-x\"} 0.5")) << text;
  EXPECT_TRUE(has("gem_gpu_healthy{UUID=\"GPU-x\"} 0")) << "unwatched is not healthy: " << text;
  m.keep_only([](const std::string& n) { return n == "a"; });
  const std::string after = m.render(v);
  EXPECT_EQ(after.find("gem_client_handoff_seconds_count{UUID=\"GPU-x\",client=\"b\"}"), std::string::npos) << after;
}

// One record per client (ClientView, built by Server::client_view): the --stats file and the metrics
// show the same numbers for it, each in its own units.
TEST(ClientRecord, StatsFileAndMetricsShowTheSameRecord) {
  gem::sched::ClientView c;
  c.name = "team-a/pod-1";
  c.request = 0.25;
  c.limit = 0.75;
  c.share = 0.5;
  c.used_total = 1500000;
  c.grants = 7;
  c.coruns = 3;
  c.revocations = 4;
  c.latency = 5000;
  c.connected = true;
  c.gpu_mem = 8ull << 30;
  c.mem_bytes = 1 << 20;
  c.resident = false;
  c.evictions = 2;
  c.corun = true;
  gem::sched::SchedView v;
  v.gpu = "GPU-x";
  v.clients = {c};
  const std::string text = gem::sched::SchedMetrics().render(v);
  const nlohmann::json st = gem::sched::stats_record(c);

  auto sample = [&](const std::string& name) {
    const std::string head = name + "{UUID=\"GPU-x\",client=\"team-a/pod-1\",namespace=\"team-a\",pod=\"pod-1\"} ";
    const size_t at = text.find(head);
    EXPECT_NE(at, std::string::npos) << name << " missing:\n" << text;
    return at == std::string::npos ? -1.0 : std::strtod(text.c_str() + at + head.size(), nullptr);
  };
  auto number = [](const nlohmann::json& j) { return j.is_boolean() ? (j.get<bool>() ? 1.0 : 0.0) : j.get<double>(); };
  // --stats field -> metric, and what the metric's unit is in the field's (µs for seconds).
  const std::map<std::string, std::pair<std::string, double>> same = {
      {"request", {"gem_client_request_ratio", 1}},
      {"limit", {"gem_client_limit_ratio", 1}},
      {"share_window", {"gem_client_share_ratio", 1}},
      {"used_us_total", {"gem_client_gpu_seconds_total", 1e6}},
      {"grants", {"gem_client_grants_total", 1}},
      {"coruns", {"gem_client_coruns_total", 1}},
      {"revocations", {"gem_client_revocations_total", 1}},
      {"latency_us", {"gem_client_latency_target_seconds", 1e6}},
      {"connected", {"gem_client_connected", 1}},
      {"gpu_mem", {"gem_client_memory_limit_bytes", 1}},
      {"mem_bytes", {"gem_client_memory_used_bytes", 1}},
      {"resident", {"gem_client_memory_resident", 1}},
      {"evictions", {"gem_client_evictions_total", 1}},
  };
  std::set<std::string> fields;
  for (const auto& [k, _] : st.items()) fields.insert(k);
  for (const auto& [field, metric] : same) {
    ASSERT_TRUE(st.contains(field)) << field;
    EXPECT_DOUBLE_EQ(sample(metric.first) * metric.second, number(st[field])) << field << " vs " << metric.first;
    fields.erase(field);
  }
  // Only the co-run flag is the file's alone (the metrics count co-runs instead).
  EXPECT_EQ(fields, std::set<std::string>{"corun"});
  EXPECT_EQ(st["corun"], true);
  EXPECT_EQ(st["gpu_mem"].get<uint64_t>(), 8ull << 30);
}

}  // namespace

namespace {

// gem-pmgr counts what its processes are told: a refused renewal (quota 0) is no grant, a process's
// wait ends with its grant or with "scheduler unavailable", and a closed connection forgets its wait.
TEST(PmgrMetrics, GrantsRevocationsAndWaitsAsProcessesSeeThem) {
  gem::pmgr::PmgrMetrics m;
  using gem::proto::Message;
  m.asked(1, 0);
  m.told(1, Message{7, gem::proto::TokenGrant{0}}, 500);  // refused renewal: not a grant
  m.told(1, Message{7, gem::proto::TokenGrant{30000}}, 2000);
  m.asked(2, 1000);
  m.told(2, Message{8, gem::proto::Error{gem::proto::ErrorCode::kSchedulerUnavailable, "x"}}, 1500);
  m.told(2, Message{0, gem::proto::TokenGrant{30000}}, 9000);  // not asked any more: counted, no wait
  m.asked(3, 0);
  m.gone(3);
  m.told(1, Message{0, gem::proto::TokenRevoke{1000}}, 3000);
  gem::pmgr::PmgrView v;
  v.client = "c";
  v.launch_processes = 2;
  v.routes = {{"unix:/s.sock", true, false, 0, 2, 1 << 20, 4096}};
  const std::string text = m.render(v);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("gem_pmgr_grants_total{client=\"c\"} 2")) << text;
  EXPECT_TRUE(has("gem_pmgr_revocations_total{client=\"c\"} 1")) << text;
  EXPECT_TRUE(has("gem_pmgr_scheduler_unavailable_total{client=\"c\"} 1")) << text;
  EXPECT_TRUE(has("gem_pmgr_token_wait_seconds_count{client=\"c\"} 1")) << text;
  EXPECT_TRUE(has("gem_pmgr_token_wait_seconds_sum{client=\"c\"} 0.002")) << text;
  EXPECT_TRUE(has("gem_pmgr_processes{client=\"c\",kind=\"launch\"} 2")) << text;
  EXPECT_TRUE(has("gem_pmgr_memory_limit_bytes{client=\"c\",scheduler=\"unix:/s.sock\"} 1048576")) << text;
  EXPECT_TRUE(has("gem_pmgr_scheduler_up{client=\"c\",scheduler=\"unix:/s.sock\"} 1")) << text;
}

// gemctl ps's source (issue 20): per process, which holds the token and how much memory it leases.
TEST(PmgrMetrics, PerProcessTokenAndMemory) {
  gem::pmgr::PmgrView v;
  v.client = "ns/p";
  v.processes = {{41, "unix:/g0.sock", false, true, 0}, {41, "unix:/g0.sock", true, false, 1 << 20}, {42, "unix:/g1.sock", false, false, 0}};
  const std::string text = gem::pmgr::PmgrMetrics().render(v);
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  const std::string c = "client=\"ns/p\",namespace=\"ns\",pod=\"p\",";
  EXPECT_TRUE(has("gem_pmgr_process_token_held{" + c + "pid=\"41\",scheduler=\"unix:/g0.sock\"} 1")) << text;
  EXPECT_TRUE(has("gem_pmgr_process_token_held{" + c + "pid=\"42\",scheduler=\"unix:/g1.sock\"} 0")) << text;
  EXPECT_TRUE(has("gem_pmgr_process_memory_bytes{" + c + "pid=\"41\",scheduler=\"unix:/g0.sock\"} 1048576")) << text;
  EXPECT_EQ(text.find("gem_pmgr_process_memory_bytes{" + c + "pid=\"42\""), std::string::npos) << "a launch gate leases no memory";
}

}  // namespace
