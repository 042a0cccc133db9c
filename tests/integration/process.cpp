#include "process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace gemtest {

namespace {

void nap_ms(int ms) {
  timespec ts{ms / 1000, (ms % 1000) * 1000000L};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

double now_s() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<double>(ts.tv_sec) + ts.tv_nsec / 1e9;
}

}  // namespace

Process::Process(const SpawnOptions& opts) {
  if (opts.argv.empty()) throw std::runtime_error("Process: empty argv");
  name_ = opts.argv[0].substr(opts.argv[0].rfind('/') + 1);

  // Everything the child needs is prepared before fork: after it only async-signal-safe calls.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const char* eq = std::strchr(*e, '=');
    if (eq == nullptr) continue;
    env[std::string(*e, static_cast<size_t>(eq - *e))] = eq + 1;
  }
  for (const auto& k : opts.unset_env) env.erase(k);
  for (const auto& [k, v] : opts.env) env[k] = v;
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp;
  for (auto& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = opts.argv;
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  const std::string out = opts.stdout_path.empty() ? "/dev/null" : opts.stdout_path;
  const std::string err = opts.stderr_path.empty() ? "/dev/null" : opts.stderr_path;

  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
  if (pid_ == 0) {
    const int in_fd = open("/dev/null", O_RDONLY);
    const int out_fd = open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    const int err_fd = open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in_fd < 0 || out_fd < 0 || err_fd < 0) _exit(126);
    dup2(in_fd, 0);
    dup2(out_fd, 1);
    dup2(err_fd, 2);
    // Default signal dispositions and an empty mask, whatever the test runner had.
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, nullptr);
    ::signal(SIGPIPE, SIG_DFL);
    execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
}

Process::~Process() {
  if (!status_) stop(2.0);
}

bool Process::try_reap(bool block) {
  if (status_) return true;
  int st = 0;
  for (;;) {
    const pid_t r = waitpid(pid_, &st, block ? 0 : WNOHANG);
    if (r == pid_) {
      status_ = st;
      return true;
    }
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {  // not our child any more (cannot happen): treat as gone
      status_ = -1;
      return true;
    }
    return false;
  }
}

bool Process::alive() { return !try_reap(false); }

std::optional<int> Process::wait_for(double seconds) {
  const double deadline = now_s() + seconds;
  while (!try_reap(false)) {
    if (now_s() >= deadline) return std::nullopt;
    nap_ms(5);
  }
  return status_;
}

void Process::signal(int sig) {
  if (!status_) ::kill(pid_, sig);
}

int Process::stop(double grace) {
  if (status_) return *status_;
  ::kill(pid_, SIGTERM);
  if (!wait_for(grace)) {
    ::kill(pid_, SIGKILL);
    try_reap(true);
  }
  return *status_;
}

std::string describe_status(int status) {
  if (status == -1) return "lost";
  if (WIFEXITED(status)) return "exit " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

bool exited_ok(int status) { return status != -1 && WIFEXITED(status) && WEXITSTATUS(status) == 0; }

}  // namespace gemtest
