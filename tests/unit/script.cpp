// Scenario script runner: see script.h.
#include "script.h"

#include <dirent.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <sstream>

namespace gem::testing {

std::string testdata_dir(const std::string& name) {
  if (const char* src = std::getenv("GEM_SRC")) return std::string(src) + "/tests/unit/testdata/" + name;
  std::string f = __FILE__;
  return f.substr(0, f.rfind('/')) + "/testdata/" + name;
}

std::vector<std::string> script_files(const std::string& dir) {
  std::vector<std::string> files;
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return files;
  while (dirent* e = readdir(d)) {
    const std::string n = e->d_name;
    if (n.size() > 4 && n.substr(n.size() - 4) == ".txt") files.push_back(n);
  }
  closedir(d);
  std::sort(files.begin(), files.end());
  return files;
}

void run_script(const std::string& path, const std::function<std::vector<std::string>(const std::string&)>& run) {
  std::ifstream f(path);
  ASSERT_TRUE(f.good()) << "cannot read " << path;
  std::vector<std::string> lines;
  for (std::string l; std::getline(f, l);) lines.push_back(l);
  const bool rewrite = std::getenv("GEM_REWRITE") != nullptr;
  std::vector<std::string> rewritten;
  for (size_t i = 0; i < lines.size();) {
    const std::string& l = lines[i];
    if (l.rfind("> ", 0) != 0) {
      // Comments and blank lines are kept; stray expectation lines only before the first command.
      if (l.empty() || l[0] == '#') {
        rewritten.push_back(l);
      } else {
        ADD_FAILURE() << path << ":" << i + 1 << ": expectation without a command: " << l;
      }
      ++i;
      continue;
    }
    const std::string command = l.substr(2);
    std::vector<std::string> expected;
    size_t j = i + 1;
    for (; j < lines.size() && lines[j].rfind("> ", 0) != 0 && !lines[j].empty() && lines[j][0] != '#'; ++j) {
      expected.push_back(lines[j]);
    }
    const std::vector<std::string> got = run(command);
    if (!rewrite && got != expected) {
      std::string e, g;
      for (const auto& s : expected) e += "  " + s + "\n";
      for (const auto& s : got) g += "  " + s + "\n";
      ADD_FAILURE() << path << ":" << i + 1 << ": > " << command << "\nexpected:\n" << e << "got:\n" << g;
    }
    rewritten.push_back(l);
    rewritten.insert(rewritten.end(), got.begin(), got.end());
    i = j;
  }
  if (rewrite) {
    std::ofstream o(path, std::ios::trunc);
    for (const auto& l : rewritten) o << l << "\n";
  }
}

bool Command::flag(const std::string& w) const { return std::find(words.begin(), words.end(), w) != words.end(); }

Command parse_command(const std::string& line) {
  Command c;
  std::istringstream in(line);
  for (std::string w; in >> w;) {
    const size_t eq = w.find('=');
    if (eq == std::string::npos) {
      c.words.push_back(w);
    } else {
      c.kv[w.substr(0, eq)] = w.substr(eq + 1);
    }
  }
  return c;
}

uint64_t script_num(const std::string& v) {
  if (v == "max") return UINT64_MAX;
  if (v.rfind("2^", 0) == 0) return uint64_t{1} << std::stoul(v.substr(2));
  size_t used = 0;
  const uint64_t n = std::stoull(v, &used);
  const std::string suffix = v.substr(used);
  static const std::pair<const char*, int> kSuffixes[] = {{"", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
  for (const auto& [s, shift] : kSuffixes) {
    if (suffix == s) return n << shift;
  }
  ADD_FAILURE() << "not a number: " << v;
  return 0;
}

void run_all_scripts(const std::string& name, size_t min_files, const std::function<Interpreter(const std::string&)>& make) {
  const std::string dir = testdata_dir(name);
  const std::vector<std::string> files = script_files(dir);
  ASSERT_GE(files.size(), min_files) << "scenario scripts not found in " << dir
                                     << " (run from the repository root, or set GEM_SRC)";
  for (const std::string& f : files) {
    SCOPED_TRACE(f);
    run_script(dir + "/" + f, make(dir + "/" + f));
  }
}

}  // namespace gem::testing
