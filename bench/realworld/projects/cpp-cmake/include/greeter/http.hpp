#pragma once
#include <string>

namespace greeter {
// The path of an HTTP/1.x request line ("GET /x HTTP/1.1" -> "/x"); "" when it is not one.
std::string request_path(const std::string& request);
// A complete HTTP/1.1 response with a text/plain body.
std::string text_response(int status, const std::string& body);
}
