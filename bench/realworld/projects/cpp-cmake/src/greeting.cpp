#include "greeter/greeting.hpp"

namespace greeter {
std::string greeting_for(const std::string& path) {
  if (path == "/" || path.empty()) return "Hello from C++ built with CMake\n";
  return "Hello from C++ built with CMake, you asked for " + path + "\n";
}
}  // namespace greeter
