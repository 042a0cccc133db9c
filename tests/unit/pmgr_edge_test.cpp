// gem-pmgr's edge helpers without a poll loop: routing a device UUID to a scheduler endpoint, the
// shared secret file and its comparison.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <vector>

#include "../../pod-manager/manager.h"
#include "gem/secret.h"

namespace gem::pmgr {
namespace {

ManagerOptions Opts(const std::string& dir) {
  ManagerOptions o;
  o.client = "c";
  o.scheduler.unix_path = "/run/gem/default.sock";
  o.scheduler_dir = dir;
  return o;
}

TEST(SchedulerFor, AValidUuidMapsIntoTheDirectory) {
  net::Endpoint ep;
  std::string why;
  ASSERT_TRUE(scheduler_for(Opts("/run/gem"), "GPU-fa4e0000-0000-0000-0000-000000000001", &ep, &why)) << why;
  EXPECT_EQ(ep.unix_path, "/run/gem/GPU-fa4e0000-0000-0000-0000-000000000001.sock");
}

TEST(SchedulerFor, EmptyUuidAndNoDirectoryUseTheDefaultScheduler) {
  net::Endpoint ep;
  std::string why;
  ASSERT_TRUE(scheduler_for(Opts("/run/gem"), "", &ep, &why));
  EXPECT_EQ(ep.to_string(), "unix:/run/gem/default.sock");
  ASSERT_TRUE(scheduler_for(Opts(""), "GPU-fa4e0000-0000-0000-0000-000000000001", &ep, &why));
  EXPECT_EQ(ep.to_string(), "unix:/run/gem/default.sock") << "two devices, one default scheduler: one route";
}

TEST(SchedulerFor, AnythingElseIsRefusedAndNeverBecomesAPath) {
  for (const std::string& bad : std::vector<std::string>{"../elsewhere/x", "GPU-../../etc", "GPU-fa4e0000-0000-0000-0000-00000000000",
                                "gpu-fa4e0000-0000-0000-0000-000000000001x", std::string(300, 'a')}) {
    for (const std::string dir : {"/run/gem", ""}) {
      net::Endpoint ep;
      std::string why;
      EXPECT_FALSE(scheduler_for(Opts(dir), bad, &ep, &why)) << bad;
      EXPECT_NE(why.find("not a GPU UUID"), std::string::npos) << why;
      EXPECT_LE(why.size(), 200u) << "fits in an Error frame";
    }
  }
}

TEST(Secret, ComparesWholeStrings) {
  EXPECT_TRUE(secrets_equal("abc", "abc"));
  EXPECT_FALSE(secrets_equal("abc", "abd"));
  EXPECT_FALSE(secrets_equal("abc", "ab"));
  EXPECT_FALSE(secrets_equal("", "a"));
  EXPECT_TRUE(secrets_equal("", ""));
}

class SecretFile : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/gem-secret-XXXXXX";
    const int fd = mkstemp(tmpl);
    ASSERT_GE(fd, 0);
    close(fd);
    path_ = tmpl;
  }
  void TearDown() override { std::remove(path_.c_str()); }
  void write(const std::string& text) { std::ofstream(path_, std::ios::trunc) << text; }
  std::string path_;
};

TEST_F(SecretFile, FirstLineTrimmed) {
  write("  s3cret-value \t\nsecond line\n");
  std::string s, err;
  ASSERT_TRUE(read_secret_file(path_, &s, &err)) << err;
  EXPECT_EQ(s, "s3cret-value");
}

TEST_F(SecretFile, EmptyLongOrUnprintableIsAClearError) {
  std::string s, err;
  write("\n");
  EXPECT_FALSE(read_secret_file(path_, &s, &err));
  EXPECT_NE(err.find("1 to 128"), std::string::npos) << err;
  write(std::string(129, 'x'));
  EXPECT_FALSE(read_secret_file(path_, &s, &err));
  write("bad\x01secret");
  EXPECT_FALSE(read_secret_file(path_, &s, &err));
  EXPECT_NE(err.find("printable"), std::string::npos) << err;
  EXPECT_EQ(err.find("bad"), std::string::npos) << "never prints the secret";
  EXPECT_FALSE(read_secret_file(path_ + ".missing", &s, &err));
  EXPECT_NE(err.find("No such file"), std::string::npos) << err;
}

}  // namespace
}  // namespace gem::pmgr
