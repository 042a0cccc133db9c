// Issue 6, "Limits" and "Identity": idle CPU with the users' flags, the connection cap and a low
// descriptor limit, the Hello deadline, device UUIDs, shared secrets and socket file modes.
#include "hardening_fixture.h"

namespace gemtest {
namespace {

// 8. Idle daemons, started as users start them, cost (almost) no CPU.
TEST_F(HardeningTest, IdleDaemonsUseNoCpu) {
  for (const bool with_stats : {false, true}) {
    SCOPED_TRACE(with_stats ? "gem-schd --stats" : "no --stats");
    write_config({{"idle", 1.0, 1.0}});
    SchedulerOptions so = users_scheduler_options();
    so.stats = with_stats;
    start_scheduler(so);
    start_pod_manager("idle");
    RawClient hook;
    ASSERT_TRUE(hook.connect(pmgr_socket("idle")));
    ASSERT_TRUE(hook.hello("idle", proto::Role::kHook, fake_uuid()));
    const auto set = hook.receive_skipping_heartbeats(3 * slack());
    ASSERT_TRUE(set && std::holds_alternative<proto::ClientSettings>(set->body))
        << "the idle client was not admitted: " << (set ? proto::type_name(set->body) : "nothing");
    sleep_ms(500);
    const double s0 = cpu_seconds(schd_->pid()), p0 = cpu_seconds(pmgrs_["idle"]->pid());
    const Micros t0 = mono_us();
    sleep_ms(3000);
    const double s1 = cpu_seconds(schd_->pid()), p1 = cpu_seconds(pmgrs_["idle"]->pid());
    const double wall = (mono_us() - t0) / 1e6;
    const double schd_pct = 100 * (s1 - s0) / wall, pmgr_pct = 100 * (p1 - p0) / wall;
    std::printf("    idle over %.1f s%s: gem-schd %.2f%% of a core (%.0f ms), gem-pmgr %.2f%% (%.0f ms)\n", wall,
                with_stats ? " (gem-schd --stats)" : "", schd_pct, (s1 - s0) * 1000, pmgr_pct, (p1 - p0) * 1000);
    EXPECT_LT(schd_pct, with_stats ? 2.0 : 1.0);
    EXPECT_LT(pmgr_pct, 1.0);
    EXPECT_TRUE(hook.connected() && !hook.closed());
    stop_daemons_expect_clean();
    pmgrs_.clear();
    schd_.reset();
  }
}

// 9. Few file descriptors and many connections: no spin, refusals are prompt, service goes on.
TEST_F(HardeningTest, ConnectionFloodUnderALowFdLimit) {
  ASSERT_EQ(access("/usr/bin/prlimit", X_OK), 0) << "needs /usr/bin/prlimit (util-linux)";
  write_config({{"c", 1.0, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  so.wrapper = {"/usr/bin/prlimit", "--nofile=64:64", "--"};
  start_scheduler(so);
  const int fds0 = fd_count(schd_->pid());
  std::vector<std::unique_ptr<RawClient>> conns;
  int connect_failed = 0;
  for (int i = 0; i < 100; ++i) {
    auto c = std::make_unique<RawClient>();
    if (!c->connect(path("schd.sock"))) ++connect_failed;
    conns.push_back(std::move(c));
  }
  const double c0 = cpu_seconds(schd_->pid());
  const Micros t0 = mono_us();
  // Refused connections see an Error (kBusy) or a close at once (within 300 ms).
  sleep_ms(static_cast<int>(300 * slack()));
  int refused_fast = 0, busy = 0;
  for (auto& c : conns) {
    if (!c->connected()) continue;
    std::vector<proto::Message> seen;
    if (c->wait_closed(0.002, nullptr, &seen) || !seen.empty()) ++refused_fast;
    for (const auto& m : seen) busy += error_code(m) == static_cast<int>(proto::ErrorCode::kBusy) ? 1 : 0;
  }
  const double refuse_scan_ms = (mono_us() - t0) / 1000.0;
  const int fds_peak = fd_count(schd_->pid());
  sleep_ms(2000);
  const double c1 = cpu_seconds(schd_->pid());
  const double cpu_pct = 100 * (c1 - c0) / ((mono_us() - t0) / 1e6);
  // The rest never said Hello: closed by the deadline.
  int closed_late = 0;
  for (auto& c : conns) closed_late += c->connected() && c->wait_closed(1.0 * slack()) ? 1 : 0;
  std::printf("    fd limit 64: %d of 100 connects failed; %d refused at once (%d with kBusy) within %.0f ms; "
              "%d closed in all; gem-schd fds %d -> %d; CPU over the next 2 s %.1f%% of a core\n",
              connect_failed, refused_fast, busy, refuse_scan_ms, closed_late, fds0, fds_peak, cpu_pct);
  EXPECT_GE(refused_fast + connect_failed, 100 - 64) << "connections past the fd limit were not refused promptly";
  EXPECT_GT(busy, 0) << "no refused connection was told kBusy";
  EXPECT_EQ(closed_late + connect_failed, 100) << "connections without Hello stayed open";
  EXPECT_LT(cpu_pct, 20.0) << "gem-schd spins when it runs out of descriptors";
  EXPECT_LE(fds_peak, 64);
  conns.clear();
  sleep_ms(200);
  // A real client is served afterwards.
  start_pod_manager("c");
  AppOptions o;
  o.client = "c";
  o.seconds = 2;
  App& app = start_app(o);
  wait_apps(2 + 10 * slack());
  const auto hs = app.hook_stats();
  std::printf("    afterwards a real client: hook %s\n", hs.dump().c_str());
  EXPECT_GT(hs.value("tokens", 0LL), 0) << "the client was not gated after the connection flood";
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0);
  EXPECT_LE(fd_count(schd_->pid()), fds0 + 2) << "descriptors leaked";
  stop_daemons_expect_clean();
}

TEST_F(HardeningTest, MaxConnectionsFifthGetsBusy) {
  write_config({{"c", 1.0, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  so.extra = {"--max_connections", "4"};
  start_scheduler(so);
  sleep_ms(200);  // start_scheduler's probe connection is gone by now
  RawClient c[5];
  const Micros t0 = mono_us();
  for (auto& x : c) ASSERT_TRUE(x.connect(path("schd.sock")));
  const auto m = c[4].receive(1.0 * slack());
  ASSERT_TRUE(m.has_value()) << "the 5th connection got no answer";
  EXPECT_EQ(error_code(*m), static_cast<int>(proto::ErrorCode::kBusy)) << proto::type_name(m->body);
  EXPECT_TRUE(c[4].wait_closed(1.0 * slack()));
  const bool before_deadline = mono_us() - t0 < 700000;  // the Hello deadline (1 s) closes them later
  for (int i = 0; i < 4; ++i) {
    if (before_deadline) {
      EXPECT_FALSE(c[i].wait_closed(0.01)) << "connection " << i << " under the cap was closed";
    }
    c[i].close();
  }
  // With those gone a new one is admitted.
  sleep_ms(200);
  RawClient d;
  ASSERT_TRUE(d.connect(path("schd.sock")));
  ASSERT_TRUE(d.hello("c"));
  const auto r = d.receive_skipping_heartbeats(2 * slack());
  ASSERT_TRUE(r.has_value());
  EXPECT_TRUE(std::holds_alternative<proto::ClientSettings>(r->body)) << proto::type_name(r->body);
  stop_daemons_expect_clean();
}

// 9b. (issue 21, 6) A real client arriving while gem-schd's connection cap is full is told kBusy: its
// pod manager holds its processes (issue 19, "Refused clients are held") instead of letting them run
// unthrottled, and they run under the token as soon as a connection frees.
TEST_F(HardeningTest, AClientPastTheConnectionCapIsHeldNotUnthrottled) {
  write_config({{"f1", 0.1, 1.0}, {"f2", 0.1, 1.0}, {"f3", 0.1, 1.0}, {"real", 0.5, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  so.extra = {"--max_connections", "3"};
  start_scheduler(so);
  sleep_ms(200);  // start_scheduler's probe connection is gone by now
  RawClient fill[3];
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(fill[i].connect(path("schd.sock")));
    ASSERT_TRUE(fill[i].hello("f" + std::to_string(i + 1)));
    const auto r = fill[i].receive_skipping_heartbeats(2 * slack());
    ASSERT_TRUE(r.has_value() && std::holds_alternative<proto::ClientSettings>(r->body)) << "filler " << i;
  }
  start_pod_manager("real");
  AppOptions a;
  a.seconds = 1;
  a.client = "real";
  App& app = start_app(a);
  sleep_ms(2500);  // told kBusy, asked again twice
  EXPECT_TRUE(kernels_of(kernels(), app.proc->pid()).empty()) << "the client past the cap ran";
  EXPECT_NE(read_text(path("pmgr-real.log")).find("raise gem-schd's --max_connections"), std::string::npos)
      << tail(path("pmgr-real.log"));
  fill[0].close();  // a connection frees: the next retry is admitted
  wait_apps(1 + 20 * slack());
  const auto hs = app.hook_stats();
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0) << "the client past the cap ran unthrottled: " << hs.dump();
  EXPECT_GT(app.result().value("launches", 0LL), 0) << read_text(app.out_path);
  EXPECT_FALSE(kernels_of(kernels(), app.proc->pid()).empty());
  stop_daemons_expect_clean();
}

// 10. A connection that never says Hello is closed after about a second.
TEST_F(HardeningTest, SilentConnectionClosedByScheduler) {
  write_config({{"a", 1.0, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  start_scheduler(so);
  RawClient c;
  ASSERT_TRUE(c.connect(path("schd.sock")));
  double after = -1;
  const bool closed = c.wait_closed(1.0 * slack() + 2.0, &after);
  std::printf("    gem-schd closed a silent connection after %.0f ms\n", after * 1000);
  EXPECT_TRUE(closed);
  EXPECT_LE(after, 1.0 * slack() + 0.5);
  stop_daemons_expect_clean();
}

TEST_F(HardeningTest, SilentConnectionClosedByPodManager) {
  write_config({{"a", 1.0, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  start_scheduler(so);
  start_pod_manager("a");
  RawClient c;
  ASSERT_TRUE(c.connect(pmgr_socket("a")));
  double after = -1;
  const bool closed = c.wait_closed(1.0 * slack() + 2.0, &after);
  std::printf("    gem-pmgr %s a silent connection%s%.0f ms\n", closed ? "closed" : "kept", closed ? " after " : " for ",
              closed ? after * 1000 : (1.0 * slack() + 2.0) * 1000);
  EXPECT_TRUE(closed);
  EXPECT_LE(after, 1.0 * slack() + 0.5);
  stop_daemons_expect_clean();
}

// 11. A device UUID that is not one is refused and never becomes a path.
TEST_F(HardeningTest, BadDeviceUuidToPodManager) {
  write_config({{"a", 1.0, 1.0}});
  std::filesystem::create_directory(path("scheds"));
  std::filesystem::create_directory(path("elsewhere"));
  // A listener where "../elsewhere/x" would lead: nobody may connect to it.
  const int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path("elsewhere/x.sock").c_str(), sizeof addr.sun_path - 1);
  ASSERT_EQ(bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0) << std::strerror(errno);
  ASSERT_EQ(listen(lfd, 16), 0);
  PodManagerOptions po;
  po.extra = {"--scheduler_dir", path("scheds")};
  start_pod_manager("a", po);
  RawClient c;
  ASSERT_TRUE(c.connect(pmgr_socket("a")));
  ASSERT_TRUE(c.hello("a", proto::Role::kHook, "../elsewhere/x"));
  const auto m = c.receive_skipping_heartbeats(2 * slack());
  if (!c.closed()) c.send({2, proto::TokenRequest{0}});  // and if it was let in, make it route
  sleep_ms(500);
  int reached = 0;
  for (;;) {
    const int fd = accept4(lfd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) break;
    ++reached;
    close(fd);
  }
  close(lfd);
  std::printf("    hook Hello with device_uuid '../elsewhere/x': %s; connections outside --scheduler_dir: %d\n",
              m ? proto::type_name(m->body) : (c.closed() ? "closed" : "no answer"), reached);
  ASSERT_TRUE(m.has_value()) << "no answer to a Hello with a bad device UUID";
  EXPECT_NE(error_code(*m), -1) << "a bad device UUID was admitted: " << proto::type_name(m->body);
  EXPECT_EQ(reached, 0) << "gem-pmgr connected outside --scheduler_dir";
  EXPECT_TRUE(pmgrs_["a"]->alive());
  stop_daemons_expect_clean();
}

TEST_F(HardeningTest, BadDeviceUuidToScheduler) {
  write_config({{"a", 1.0, 1.0}});
  SchedulerOptions so;
  so.stats = false;
  start_scheduler(so);
  for (const std::string uuid : {"../elsewhere/x", "GPU-zz", "GPU-fa4e0000-0000-0000-0000-00000000000/"}) {
    RawClient c;
    ASSERT_TRUE(c.connect(path("schd.sock")));
    ASSERT_TRUE(c.hello("a", proto::Role::kPodManager, uuid));
    const auto m = c.receive_skipping_heartbeats(2 * slack());
    ASSERT_TRUE(m.has_value()) << uuid;
    EXPECT_NE(error_code(*m), -1) << uuid << " admitted: " << proto::type_name(m->body);
    EXPECT_TRUE(c.wait_closed(2 * slack())) << uuid;
    std::printf("    pod manager Hello with device_uuid '%s': %s %d\n", uuid.c_str(), proto::type_name(m->body),
                error_code(*m));
  }
  stop_daemons_expect_clean();
}

// 12. --secrets: a pod manager's Hello must carry its client's secret.
TEST_F(HardeningTest, SecretsRefuseMissingAndWrongSecrets) {
  write_config({{"a", 1.0, 1.0}});
  write_text(path("secrets"), "# ID SECRET\na s3cret-of-a\n");
  ASSERT_EQ(chmod(path("secrets").c_str(), 0600), 0);
  SchedulerOptions so;
  so.stats = false;
  so.extra = {"--secrets", path("secrets")};
  start_scheduler(so);
  for (const auto& [label, secret] : std::vector<std::pair<std::string, std::string>>{
           {"no secret", ""}, {"wrong secret", "s3cret-of-b"}, {"right secret", "s3cret-of-a"}}) {
    RawClient c;
    ASSERT_TRUE(c.connect(path("schd.sock")));
    ASSERT_TRUE(c.hello("a", proto::Role::kPodManager, "", secret));
    const auto m = c.receive_skipping_heartbeats(2 * slack());
    ASSERT_TRUE(m.has_value()) << label;
    std::printf("    Hello with %s: %s %d\n", label.c_str(), proto::type_name(m->body), error_code(*m));
    if (label == "right secret") {
      EXPECT_TRUE(std::holds_alternative<proto::ClientSettings>(m->body)) << proto::type_name(m->body);
    } else {
      EXPECT_EQ(error_code(*m), static_cast<int>(proto::ErrorCode::kDenied)) << label;
      EXPECT_TRUE(c.wait_closed(2 * slack())) << label;
    }
  }
  stop_daemons_expect_clean();
}

TEST_F(HardeningTest, SecretFileOfARealPodManager) {
  write_config({{"a", 1.0, 1.0}});
  write_text(path("secrets"), "a s3cret-of-a\n");
  write_text(path("a.secret"), "s3cret-of-a\n");
  ASSERT_EQ(chmod(path("secrets").c_str(), 0600), 0);
  ASSERT_EQ(chmod(path("a.secret").c_str(), 0600), 0);
  SchedulerOptions so;
  so.stats = false;
  so.extra = {"--secrets", path("secrets")};
  start_scheduler(so);
  PodManagerOptions po;
  po.extra = {"--secret_file", path("a.secret")};
  start_pod_manager("a", po);
  ASSERT_TRUE(pmgrs_["a"]->alive()) << "gem-pmgr does not take --secret_file:\n" << tail(path("pmgr-a.log"));
  AppOptions o;
  o.client = "a";
  o.seconds = 2;
  App& without = start_app(o);  // no GEMINI_SECRET_FILE: refused by the pod manager
  wait_apps(2 + 10 * slack());
  o.env["GEMINI_SECRET_FILE"] = path("a.secret");
  App& app = start_app(o);
  wait_apps(2 + 10 * slack());
  const auto hs = app.hook_stats();
  std::printf("    real pod manager with --secret_file: hook %s\n", hs.dump().c_str());
  EXPECT_GT(hs.value("tokens", 0LL), 0);
  EXPECT_EQ(hs.value("unthrottled_launches", -1LL), 0);
  EXPECT_EQ(without.hook_stats().value("tokens", -1LL), 0) << "a process without the secret got the token";
  EXPECT_NE(read_text(without.err_path).find("secret"), std::string::npos)
      << "the refused process does not say why:\n" << tail(without.err_path);
  stop_daemons_expect_clean();
}

// Issue 21, item 6: one rule for files of secrets. gem-pmgr refuses a --secret_file readable by others
// as gem-schd refuses such a --secrets (exit 2, the file and its mode named); gem-schd refuses an
// empty --secrets at start (it would refuse every Hello afterwards).
TEST_F(HardeningTest, SecretFilesReadableByOthersOrEmptyAreRefusedAtStart) {
  write_config({{"a", 1.0, 1.0}});
  auto run = [&](std::vector<std::string> argv, const std::string& log) {
    SpawnOptions o;
    o.argv = std::move(argv);
    o.stderr_path = o.stdout_path = path(log);
    Process p(o);
    const auto st = p.wait_for(10 * slack());
    if (!st) p.stop();
    return st ? *st : -1;
  };
  write_text(path("a.secret"), "s3cret-of-a\n");
  ASSERT_EQ(chmod(path("a.secret").c_str(), 0644), 0);
  int st = run({bin("bin/gem-pmgr"), "--name", "a", "--socket", pmgr_socket("a"), "--scheduler", path("schd.sock"),
                "--secret_file", path("a.secret")},
               "pmgr-0644.log");
  EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) == 2) << "gem-pmgr took a 0644 --secret_file: " << describe_status(st)
                                                     << "\n" << tail(path("pmgr-0644.log"));
  EXPECT_NE(read_text(path("pmgr-0644.log")).find(path("a.secret") + ": readable or writable by others (mode 644)"),
            std::string::npos)
      << tail(path("pmgr-0644.log"));
  EXPECT_EQ(read_text(path("pmgr-0644.log")).find("s3cret-of-a"), std::string::npos) << "the secret was logged";
  // The same file at 0640 (group-readable, as a pod's processes may need) is taken.
  ASSERT_EQ(chmod(path("a.secret").c_str(), 0640), 0);
  PodManagerOptions po;
  po.extra = {"--secret_file", path("a.secret")};
  start_pod_manager("a", po);
  EXPECT_TRUE(pmgrs_["a"]->alive()) << tail(path("pmgr-a.log"));

  // A file of 0 bytes is refused by the reader ("is empty"), one of comments only by the parser.
  const std::vector<std::pair<std::string, std::string>> empties = {
      {std::string(), path("secrets") + " is empty"},
      {"# ID SECRET\n\n   # nobody yet\n", path("secrets") + ": no 'ID SECRET' line"}};
  for (const auto& [text, said] : empties) {
    write_text(path("secrets"), text);
    ASSERT_EQ(chmod(path("secrets").c_str(), 0600), 0);
    st = run({bin("bin/gem-schd"), "--socket", path("x.sock"), "--config", path("resource-config.txt"), "--secrets",
              path("secrets")},
             "schd-empty.log");
    EXPECT_TRUE(WIFEXITED(st) && WEXITSTATUS(st) != 0)
        << "gem-schd started with an empty --secrets: " << describe_status(st) << "\n" << tail(path("schd-empty.log"));
    EXPECT_NE(read_text(path("schd-empty.log")).find(said), std::string::npos)
        << tail(path("schd-empty.log"));
  }
  stop_daemons_expect_clean();
}

// 13. Socket files are 0660 whatever the umask of whoever starts the daemons.
TEST_F(HardeningTest, SocketFilesAre0660UnderUmask000) {
  write_config({{"a", 1.0, 1.0}});
  const mode_t old = umask(0);
  SchedulerOptions so;
  so.stats = false;
  start_scheduler(so);
  start_pod_manager("a");
  umask(old);
  for (const std::string& sock : {path("schd.sock"), pmgr_socket("a")}) {
    struct stat st {};
    ASSERT_EQ(stat(sock.c_str(), &st), 0) << sock;
    std::printf("    %s: mode %04o\n", sock.substr(sock.rfind('/') + 1).c_str(), st.st_mode & 07777);
    EXPECT_TRUE(S_ISSOCK(st.st_mode));
    EXPECT_EQ(st.st_mode & 07777, 0660u) << sock;
  }
  stop_daemons_expect_clean();
}

}  // namespace
}  // namespace gemtest
