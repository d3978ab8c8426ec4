#pragma once
#include <string>

namespace greeter {
// The body the server answers with for a request path.
std::string greeting_for(const std::string& path);
}
