#include "greeter/http.hpp"

#include <sstream>

namespace greeter {
std::string request_path(const std::string& request) {
  std::istringstream line(request.substr(0, request.find("\r\n")));
  std::string method, path, version;
  if (!(line >> method >> path >> version) || version.rfind("HTTP/1.", 0) != 0) return "";
  return path;
}

std::string text_response(int status, const std::string& body) {
  std::ostringstream out;
  out << "HTTP/1.1 " << status << (status == 200 ? " OK" : " Bad Request") << "\r\n"
      << "Content-Type: text/plain; charset=utf-8\r\n"
      << "Content-Length: " << body.size() << "\r\n"
      << "Connection: close\r\n\r\n"
      << body;
  return out.str();
}
}  // namespace greeter
