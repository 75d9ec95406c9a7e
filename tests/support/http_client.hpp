// A minimal HTTP/1.1 client for loopback tests: one request, the whole answer until close.
#pragma once

#include "net.hpp"

#include <string>

namespace test {

struct HttpAnswer {
    int status = 0; // 0: no answer (closed or timed out)
    std::string head;
    std::string body;

    bool has_header(const std::string& line) const { return head.find(line) != std::string::npos; }
};

inline HttpAnswer parse_http_answer(const std::string& raw) {
    HttpAnswer answer;
    const auto end_of_head = raw.find("\r\n\r\n");
    if (!raw.starts_with("HTTP/1.1 ") || end_of_head == std::string::npos)
        return answer;
    answer.status = std::stoi(raw.substr(9, 3));
    answer.head = raw.substr(0, end_of_head);
    answer.body = raw.substr(end_of_head + 4);
    return answer;
}

inline HttpAnswer http_request(std::uint16_t port, const std::string& request) {
    TcpClient client(port);
    client.send(request);
    return parse_http_answer(client.receive(64 << 20));
}

inline HttpAnswer http_get(std::uint16_t port, const std::string& target,
                           const std::string& extra_headers = "") {
    return http_request(port, "GET " + target + " HTTP/1.1\r\nHost: localhost\r\n" + extra_headers +
                                  "\r\n");
}

} // namespace test
