#include "pytorch_reference.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <regex>
#include <stdexcept>
#include <sys/wait.h>
#include <unistd.h>
#include <vector>

namespace qimera::bench {
namespace {

std::vector<std::string> argv_of(const ReferenceCommand& c, const std::string& mode) {
  return {c.python, c.script, "--batch", std::to_string(c.batch), "--threads",
          std::to_string(c.threads), mode};
}

// fork + exec with the child's stdin and stdout on pipes; its stderr stays the terminal's.
pid_t spawn(const std::vector<std::string>& args, std::FILE** to_child, std::FILE** from_child) {
  int in[2], out[2];
  if (::pipe(in) != 0 || ::pipe(out) != 0) throw std::runtime_error("pipe() failed");
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork() failed");
  if (pid == 0) {
    ::dup2(in[0], STDIN_FILENO);
    ::dup2(out[1], STDOUT_FILENO);
    ::close(in[0]), ::close(in[1]), ::close(out[0]), ::close(out[1]);
    std::vector<char*> argv;
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    std::fprintf(stderr, "cannot run %s\n", argv[0]);
    ::_exit(127);
  }
  ::close(in[0]);
  ::close(out[1]);
  *to_child = ::fdopen(in[1], "w");
  *from_child = ::fdopen(out[0], "r");
  return pid;
}

// One line of the child's answer; empty when it stopped.
std::string read_line(std::FILE* from_child) {
  std::string line;
  for (int c; (c = std::fgetc(from_child)) != EOF && c != '\n';) line.push_back(static_cast<char>(c));
  return line;
}

}  // namespace

PytorchReference::PytorchReference(const ReferenceCommand& command) {
  pid_ = spawn(argv_of(command, "--serve"), &to_child_, &from_child_);
  const auto ready = nlohmann::json::parse(read_line());
  version_ = ready.value("torch", std::string("?"));
}

PytorchReference::~PytorchReference() {
  if (to_child_) {
    std::fputs("0\n", to_child_);
    std::fclose(to_child_);
  }
  if (from_child_) std::fclose(from_child_);
  if (pid_ > 0) ::waitpid(pid_, nullptr, 0);
}

std::string PytorchReference::read_line() {
  auto line = bench::read_line(from_child_);
  if (line.empty()) throw std::runtime_error("the PyTorch reference stopped (see its message above)");
  return line;
}

double PytorchReference::ms_per_iteration(int iterations) {
  std::fprintf(to_child_, "%d\n", iterations);
  std::fflush(to_child_);
  return nlohmann::json::parse(read_line()).at("ms_per_iteration").get<double>();
}

MultiplyAdds count_multiply_adds(const ReferenceCommand& command) {
  std::FILE* to_child = nullptr;
  std::FILE* from_child = nullptr;
  const pid_t pid = spawn(argv_of(command, "--count-flops"), &to_child, &from_child);
  std::fclose(to_child);
  const auto line = read_line(from_child);
  std::fclose(from_child);
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (line.empty() || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    throw std::runtime_error(command.python + " " + command.script + " --count-flops failed");
  }
  const auto counts = nlohmann::json::parse(line).at("multiply_adds");
  return MultiplyAdds{counts.at("generator").get<double>(), counts.at("teacher").get<double>(),
                      counts.at("student").get<double>()};
}

std::optional<Peak> float32_peak(int threads) {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line, vendor;
  std::optional<double> ghz, mhz;
  bool avx512 = false, fma = false;
  const std::regex frequency(R"(@\s*([0-9.]+)\s*GHz)");
  const std::regex current(R"(cpu MHz\s*:\s*([0-9.]+))");
  while (std::getline(cpuinfo, line)) {
    std::smatch m;
    if (vendor.empty() && line.rfind("vendor_id", 0) == 0) vendor = line.substr(line.find(':') + 2);
    if (!ghz && line.rfind("model name", 0) == 0 && std::regex_search(line, m, frequency)) ghz = std::stod(m[1]);
    if (!mhz && std::regex_search(line, m, current)) mhz = std::stod(m[1]);
    if (line.rfind("flags", 0) == 0) {
      avx512 = line.find(" avx512f") != std::string::npos;
      fma = line.find(" fma") != std::string::npos;
    }
  }
  if (!ghz && mhz) ghz = *mhz / 1000.0;
  if (!ghz || !fma) return std::nullopt;
  // FLOP per cycle and core: two FMA units x lanes x 2. AMD's AVX-512 (Zen 4) runs on two 256-bit
  // FMA pipes, so only Intel's AVX-512 doubles the lanes (assuming its two 512-bit FMA units).
  const bool wide = avx512 && vendor == "GenuineIntel";
  const double per_cycle = wide ? 64.0 : 32.0;
  return Peak{threads * *ghz * per_cycle,
              fmt::format("{} cores x {:.2f} GHz x {:.0f} FLOP/cycle ({}{})", threads, *ghz, per_cycle,
                          vendor, wide ? ", two 512-bit FMA units" : ", two 256-bit FMA pipes")};
}

}  // namespace qimera::bench
