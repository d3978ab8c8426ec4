// greeterd PORT: answers every HTTP request with a greeting, one connection at a time.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "greeter/greeting.hpp"
#include "greeter/http.hpp"

int main(int argc, char** argv) {
  const int port = argc > 1 ? std::atoi(argv[1]) : 8080;
  std::signal(SIGPIPE, SIG_IGN);
  // as pid 1 nothing ends us on SIGTERM unless we say so
  std::signal(SIGTERM, [](int) { std::_Exit(0); });

  const int listener = socket(AF_INET, SOCK_STREAM, 0);
  const int one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_ANY);
  if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || listen(listener, 16) != 0) {
    std::perror("greeterd: listen");
    return 1;
  }
  std::printf("greeterd listening on port %d\n", port);
  std::fflush(stdout);

  for (;;) {
    const int conn = accept(listener, nullptr, nullptr);
    if (conn < 0) continue;
    char buf[4096];
    const ssize_t n = read(conn, buf, sizeof buf);
    const std::string path = n > 0 ? greeter::request_path(std::string(buf, static_cast<size_t>(n))) : "";
    const std::string reply = path.empty() ? greeter::text_response(400, "bad request\n")
                                           : greeter::text_response(200, greeter::greeting_for(path));
    (void)!write(conn, reply.data(), reply.size());
    close(conn);
  }
}
