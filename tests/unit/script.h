// Scenario scripts for the pure units (route_test.cpp, mem_budget_test.cpp), like etcd raft's
// interaction tests: a file is a list of
//   > COMMAND...
// lines, each followed by the lines the unit must answer, in order ('#' lines and blank lines are
// comments). With GEM_REWRITE=1 the files are rewritten with what the unit answers now (then review
// the diff).
#pragma once

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace gem::testing {

/// tests/unit/testdata/<name>, from $GEM_SRC when set, else from this source file's place.
std::string testdata_dir(const std::string& name);

/// The *.txt files of `dir`, sorted.
std::vector<std::string> script_files(const std::string& dir);

/// Runs the script at `path`: `run` is called once per command line (without "> ") on a fresh
/// interpreter per file, and returns the answer lines. Mismatches are reported as GoogleTest failures
/// naming the file and line.
void run_script(const std::string& path, const std::function<std::vector<std::string>(const std::string&)>& run);

/// An interpreter of one script's command lines (see run_script).
using Interpreter = std::function<std::vector<std::string>(const std::string&)>;

/// Runs every script of tests/unit/testdata/<name>/ (a GoogleTest failure when there are fewer than
/// `min_files`), each on the fresh interpreter make(path) returns, its failures traced to the file.
void run_all_scripts(const std::string& name, size_t min_files, const std::function<Interpreter(const std::string&)>& make);

/// One command line split into its words and its key=value arguments.
struct Command {
  std::vector<std::string> words;
  std::map<std::string, std::string> kv;
  bool flag(const std::string& w) const;
};
Command parse_command(const std::string& line);

/// A number in a script: decimal, "max" (UINT64_MAX), or with a suffix KiB, MiB, GiB, TiB or "2^N".
uint64_t script_num(const std::string& v);

}  // namespace gem::testing
