#include "secrets.h"

#include <sys/stat.h>

#include <cstdio>
#include <string_view>

#include "gem/protocol.h"
#include "gem/secret.h"

namespace gem::sched {

namespace {

bool printable_token(std::string_view s) {
  for (unsigned char c : s) {
    if (c <= 0x20 || c > 0x7e) return false;
  }
  return true;
}

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f'; }

// The next whitespace-separated word of *rest (consumed); empty at the end.
std::string_view next_word(std::string_view* rest) {
  size_t i = 0;
  while (i < rest->size() && is_space((*rest)[i])) ++i;
  size_t j = i;
  while (j < rest->size() && !is_space((*rest)[j])) ++j;
  const std::string_view w = rest->substr(i, j - i);
  rest->remove_prefix(j);
  return w;
}

// The file must not be readable or writable by others (the mode of the file the path names now).
bool private_file(const std::string& path, std::string* err) {
  struct stat st {};
  if (stat(path.c_str(), &st) != 0) {
    *err = path + ": cannot read";
    return false;
  }
  if (std::string why = secret_file_mode_error(path, static_cast<unsigned>(st.st_mode)); !why.empty()) {
    *err = why;
    return false;
  }
  return true;
}

}  // namespace

bool parse_secrets(const std::string& text, const std::string& path, SecretTable* out, std::string* err) {
  SecretTable next;
  std::string_view all(text);
  size_t lineno = 0;
  while (!all.empty()) {
    const size_t nl = all.find('\n');
    std::string_view line = all.substr(0, nl);
    all.remove_prefix(nl == std::string_view::npos ? all.size() : nl + 1);
    ++lineno;
    const std::string where = path + ":" + std::to_string(lineno) + ": ";
    if (lineno > kMaxSecretLines) {
      *err = path + ": more than " + std::to_string(kMaxSecretLines) + " lines";
      return false;
    }
    if (line.size() > kMaxSecretLineBytes) {
      *err = where + "line longer than " + std::to_string(kMaxSecretLineBytes) + " bytes";
      return false;
    }
    const size_t hash = line.find('#');
    if (hash != std::string_view::npos) line = line.substr(0, hash);
    const std::string_view id = next_word(&line);
    if (id.empty()) continue;
    const std::string_view secret = next_word(&line);
    if (secret.empty() || !next_word(&line).empty()) {
      *err = where + "want 'ID SECRET'";
      return false;
    }
    if (id.size() > proto::kMaxName || secret.size() > proto::kMaxSecret || !printable_token(secret)) {
      *err = where + "ID longer than " + std::to_string(proto::kMaxName) + " bytes or secret not 1 to " +
             std::to_string(proto::kMaxSecret) + " printable bytes";
      return false;
    }
    if (!next.emplace(std::string(id), std::string(secret)).second) {
      *err = where + "second secret for '" + std::string(id) + "'";
      return false;
    }
  }
  if (next.empty()) {  // every Hello would be refused: a truncated or wrong file, not a policy
    *err = path + ": no 'ID SECRET' line: every pod manager's Hello would be refused";
    return false;
  }
  *out = std::move(next);
  return true;
}

SecretsLoader::SecretsLoader(std::string path)
    : FileLoader<SecretTable>(path, kMaxSecretsBytes, [path](const std::string& text, SecretTable* out, std::string* err) {
        return private_file(path, err) && parse_secrets(text, path, out, err);
      }) {}

bool Secrets::allows(const std::string& client, const std::string& secret) const {
  if (!enabled_) return true;
  auto it = by_client_.find(client);
  if (it == by_client_.end()) return false;
  return secrets_equal(it->second, secret);
}

}  // namespace gem::sched
