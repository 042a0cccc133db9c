// resource-config.txt at scale (issue 6): a 10^6-client file parses with the right contents and
// errors, the caps are refused with clear messages, Config::find's index stays right, and the
// loader reads and parses on its own thread. Timing targets are in bench/config_bench.cpp, not here.
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdio>
#include <string>
#include <vector>

#include "gem/clock.h"
#include "gem/config.h"
#include "../../scheduler/config_loader.h"
#include "../../scheduler/config_watcher.h"

namespace gem {
namespace {

constexpr const char* kFile = "resource-config.txt";

std::string name_of(size_t i) { return "team-" + std::to_string(i % 97) + "/pod-" + std::to_string(i); }

// "N\n" then n client lines (line i + 2 holds client i), REQUESTs summing to 0.5.
std::string big_config(size_t n, size_t declared) {
  std::string s = std::to_string(declared) + "\n";
  s.reserve(n * 32);
  for (size_t i = 0; i < n; ++i) {
    s += name_of(i);
    s += i % 2 == 0 ? " 0.0000005 1 2GiB\n" : " 0.0000005 0.5 0\n";
  }
  return s;
}

std::string parse_err(const std::string& text) {
  Config cfg;
  ConfigError err;
  if (parse_config(text, kFile, &cfg, &err)) return "(accepted)";
  return err.to_string();
}

TEST(ConfigScale, MillionClientsParse) {
  const size_t n = kMaxConfigClients;
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(parse_config(big_config(n, n), kFile, &cfg, &err)) << err.to_string();
  ASSERT_EQ(cfg.clients.size(), n);
  for (size_t i : {size_t{0}, size_t{1}, n / 2 + 1, n - 1}) {
    const ClientConfig& c = cfg.clients[i];
    EXPECT_EQ(c.name, name_of(i));
    EXPECT_DOUBLE_EQ(c.request, 0.0000005);
    EXPECT_DOUBLE_EQ(c.limit, i % 2 == 0 ? 1.0 : 0.5);
    EXPECT_EQ(c.gpu_mem_bytes, i % 2 == 0 ? uint64_t{2} << 30 : 0u);
    const ClientConfig* found = cfg.find(name_of(i));
    ASSERT_NE(found, nullptr) << name_of(i);
    EXPECT_EQ(found, &cfg.clients[i]);
  }
  EXPECT_EQ(cfg.find("team-0/pod-1000000"), nullptr);
  EXPECT_EQ(cfg.find(""), nullptr);
  // Copies and moves keep the index right.
  Config copy = cfg;
  ASSERT_NE(copy.find(name_of(12345)), nullptr);
  EXPECT_EQ(copy.find(name_of(12345)), &copy.clients[12345]);
  Config moved = std::move(copy);
  EXPECT_EQ(moved.find(name_of(n - 1)), &moved.clients[n - 1]);
}

TEST(ConfigScale, DuplicateAtTheVeryEndHasItsLineNumber) {
  const size_t n = kMaxConfigClients;
  std::string text = big_config(n - 1, n);
  text += name_of(3) + " 0 1 0\n";  // client 3 is on line 5; this is line n + 1
  EXPECT_EQ(parse_err(text), std::string(kFile) + ":" + std::to_string(n + 1) + ": ID '" +
                                 name_of(3) + "' already used on line 5");
}

TEST(ConfigScale, ClientCapIsRefused) {
  EXPECT_EQ(parse_err("# big\n1000001\na 0 1 0\n"),
            "resource-config.txt:2: 1000001 clients declared, more than the 1000000 gem-schd serves");
  EXPECT_EQ(parse_err("99999999999999999999\n"),
            "resource-config.txt:1: first line must be the number of clients, got "
            "'99999999999999999999'");
  // More lines than the cap with a count under it: refused at the first line past the cap.
  const size_t n = kMaxConfigClients + 1;
  std::string text = "0\n";
  for (size_t i = 0; i < n; ++i) text += "c" + std::to_string(i) + " 0 1 0\n";
  EXPECT_EQ(parse_err(text), "resource-config.txt:" + std::to_string(n + 1) +
                                 ": more than the 1000000 clients gem-schd serves (0 declared on "
                                 "line 1)");
}

TEST(ConfigScale, ByteCapIsRefused) {
  std::string text = "1\na 0 1 0\n";
  text.resize(kMaxConfigBytes + 1, '\n');
  EXPECT_EQ(parse_err(text),
            "resource-config.txt: is 67108865 bytes, more than the 67108864 bytes (64 MiB) "
            "gem-schd reads");
  text.resize(kMaxConfigBytes);  // exactly the cap: fine
  EXPECT_EQ(parse_err(text), "(accepted)");
}

TEST(ConfigScale, ReadFileRefusesAboveTheCap) {
  char path[] = "/tmp/gem-config-scale-XXXXXX";
  const int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ASSERT_EQ(ftruncate(fd, static_cast<off_t>(kMaxConfigBytes) + 1), 0);  // sparse: no disk used
  close(fd);
  std::string text, err;
  EXPECT_FALSE(sched::read_file(path, &text, &err));
  EXPECT_EQ(err, std::string(path) + " is larger than 67108864 bytes (64 MiB), the most gem-schd reads");
  ASSERT_EQ(truncate(path, static_cast<off_t>(kMaxConfigBytes)), 0);
  EXPECT_TRUE(sched::read_file(path, &text, &err)) << err;
  EXPECT_EQ(text.size(), kMaxConfigBytes);
  unlink(path);
}

TEST(ConfigScale, FindAfterHandEditsAndReindex) {
  Config cfg;
  ConfigError err;
  ASSERT_TRUE(parse_config("2\na 0 1 0\nb 0 1 0\n", kFile, &cfg, &err));
  cfg.clients.push_back({"c", 0, 1, 0});  // index stale: find() scans
  ASSERT_NE(cfg.find("c"), nullptr);
  EXPECT_EQ(cfg.find("c")->name, "c");
  EXPECT_EQ(cfg.find("d"), nullptr);
  cfg.clients.erase(cfg.clients.begin());
  cfg.reindex();
  EXPECT_EQ(cfg.find("a"), nullptr);
  EXPECT_EQ(cfg.find("b"), &cfg.clients[0]);
  EXPECT_EQ(cfg.find("c"), &cfg.clients[1]);
  cfg.clients[0].name = "renamed";
  cfg.reindex();
  EXPECT_EQ(cfg.find("b"), nullptr);
  EXPECT_EQ(cfg.find("renamed"), &cfg.clients[0]);
  Config empty;
  EXPECT_EQ(empty.find("a"), nullptr);
}

// ---- The loader: reads and parses on its own thread ----

class ConfigLoaderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gem-loader-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/resource-config.txt";
  }
  void TearDown() override {
    unlink(path_.c_str());
    unlink((path_ + ".tmp").c_str());
    rmdir(dir_.c_str());
  }
  void write(const std::string& text) {  // rename over, so the loader never sees half a file
    const std::string tmp = path_ + ".tmp";
    FILE* f = std::fopen(tmp.c_str(), "w");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(std::fwrite(text.data(), 1, text.size(), f), text.size());
    std::fclose(f);
    ASSERT_EQ(std::rename(tmp.c_str(), path_.c_str()), 0);
  }
  // Polls the loader as gem-schd's loop does until it hands something over; records the longest
  // time one take() call took.
  std::vector<sched::ConfigUpdate> wait_update(sched::ConfigLoader& l, int seconds) {
    std::vector<sched::ConfigUpdate> got;
    const Micros deadline = mono_us() + seconds * 1000000LL;
    while (mono_us() < deadline) {
      pollfd p{l.fd(), POLLIN, 0};
      poll(&p, 1, 10);
      const Micros t = mono_us();
      const bool any = l.take(&got);
      longest_take_ = std::max(longest_take_, mono_us() - t);
      if (any) return got;
    }
    return got;
  }
  std::string dir_, path_;
  Micros longest_take_ = 0;
};

TEST_F(ConfigLoaderTest, StartsSynchronouslyThenReloadsOnItsThread) {
  write("1\nfirst 0.5 1 0\n");
  sched::ConfigLoader loader(path_);
  Config cfg;
  std::string warning, err;
  ASSERT_TRUE(loader.start(&cfg, &warning, &err)) << err;
  ASSERT_EQ(cfg.clients.size(), 1u);
  EXPECT_EQ(cfg.clients[0].name, "first");
  ASSERT_GE(loader.fd(), 0);

  write("# now broken\n1\nsecond 0.5 lots 0\n");
  auto ups = wait_update(loader, 5);
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_FALSE(ups[0].ok);
  EXPECT_EQ(ups[0].error, path_ + ":3: LIMIT 'lots' is not a number");

  // A big file: the loop's take() calls stay quick while the worker reads and parses it.
  const size_t n = kMaxConfigClients;
  write(big_config(n, n));
  ups = wait_update(loader, 60);
  ASSERT_EQ(ups.size(), 1u);
  ASSERT_TRUE(ups[0].ok) << ups[0].error;
  EXPECT_EQ(ups[0].value.clients.size(), n);
  EXPECT_NE(ups[0].value.find(name_of(n - 1)), nullptr);
  EXPECT_LT(longest_take_, 1000000) << "take() blocked the loop";  // generous; it is microseconds
}

TEST_F(ConfigLoaderTest, MissingFileAtStartIsAnError) {
  sched::ConfigLoader loader(path_);
  Config cfg;
  std::string warning, err;
  EXPECT_FALSE(loader.start(&cfg, &warning, &err));
  EXPECT_EQ(err.rfind("cannot read " + path_ + ": open " + path_ + ": No such file", 0), 0u) << err;
  Config bad;
  write("2\na 0 1 0\n");
  sched::ConfigLoader loader2(path_);
  EXPECT_FALSE(loader2.start(&bad, &warning, &err));
  EXPECT_EQ(err, path_ + ": 2 clients declared on line 1 but 1 listed");
}

TEST_F(ConfigLoaderTest, ReadErrorReportedOnceThenRecovery) {
  write("1\na 0 1 0\n");
  sched::ConfigLoader loader(path_);
  Config cfg;
  std::string warning, err;
  ASSERT_TRUE(loader.start(&cfg, &warning, &err)) << err;
  unlink(path_.c_str());
  auto ups = wait_update(loader, 5);
  ASSERT_EQ(ups.size(), 1u);
  EXPECT_FALSE(ups[0].ok);
  EXPECT_NE(ups[0].error.find("No such file"), std::string::npos) << ups[0].error;
  write("1\nb 0 1 0\n");
  ups = wait_update(loader, 5);
  ASSERT_EQ(ups.size(), 1u);
  ASSERT_TRUE(ups[0].ok) << ups[0].error;
  EXPECT_EQ(ups[0].value.clients[0].name, "b");
}

}  // namespace
}  // namespace gem
