#include "secrets.h"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <sstream>

#include "gem/protocol.h"
#include "gem/secret.h"

namespace gem::sched {

namespace {
bool printable_token(const std::string& s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c > 0x7e) return false;
  }
  return true;
}
}  // namespace

bool Secrets::load(const std::string& path, std::string* err) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *err = path + ": cannot read";
    return false;
  }
  if (std::string why = secret_file_mode_error(path, static_cast<unsigned>(st.st_mode)); !why.empty()) {
    *err = why;
    return false;
  }
  std::ifstream f(path);
  if (!f) {
    *err = path + ": cannot open";
    return false;
  }
  std::map<std::string, std::string> next;
  std::string line;
  int lineno = 0;
  while (std::getline(f, line)) {
    ++lineno;
    if (lineno > 1000000) {
      *err = path + ": more than 1000000 lines";
      return false;
    }
    const size_t hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    std::istringstream in(line);
    std::string id, secret, extra;
    if (!(in >> id)) continue;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (!(in >> secret) || (in >> extra)) {
      *err = where + "want 'ID SECRET'";
      return false;
    }
    if (id.size() > proto::kMaxName || secret.size() > proto::kMaxSecret || !printable_token(secret)) {
      *err = where + "ID longer than " + std::to_string(proto::kMaxName) + " bytes or secret not 1 to " +
             std::to_string(proto::kMaxSecret) + " printable bytes";
      return false;
    }
    if (!next.emplace(id, secret).second) {
      *err = where + "second secret for '" + id + "'";
      return false;
    }
  }
  if (next.empty()) {  // every Hello would be refused: a truncated or wrong file, not a policy
    *err = path + ": no 'ID SECRET' line: every pod manager's Hello would be refused";
    return false;
  }
  path_ = path;
  by_client_ = std::move(next);
  mtime_ = st.st_mtim.tv_sec;
  mtime_ns_ = st.st_mtim.tv_nsec;
  size_ = st.st_size;
  return true;
}

bool Secrets::reload_if_changed(std::string* err) {
  if (path_.empty()) return true;
  struct stat st {};
  if (stat(path_.c_str(), &st) != 0) return true;  // gone for a moment (being replaced): keep
  if (st.st_mtim.tv_sec == mtime_ && st.st_mtim.tv_nsec == mtime_ns_ && st.st_size == size_) return true;
  return load(path_, err);
}

bool Secrets::allows(const std::string& client, const std::string& secret) const {
  if (path_.empty()) return true;
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return false;
  return secrets_equal(it->second, secret);
}

}  // namespace gem::sched
