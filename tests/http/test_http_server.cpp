// The HTTP server over real loopback sockets, in-process: routes, limits and refusals.
#include "ecu2mqtt/http/http_server.hpp"
#include "support/http_client.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <atomic>
#include <catch2/catch.hpp>
#include <cerrno>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

using namespace ecu2mqtt;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Catch::Contains;

namespace test_http_server {
namespace {

// A running server on an ephemeral loopback port with its own io thread.
class RunningServer {
  public:
    explicit RunningServer(HttpServerConfig config = {}) {
        config.address = "127.0.0.1";
        config.port = 0;
        server_ = std::make_unique<HttpServer>(
            io_, config,
            [] {
                StatusSnapshot s;
                s.version = "test";
                EcuSnapshot ecu;
                ecu.id = "216000064136";
                s.ecus.push_back(ecu);
                return s;
            },
            log_);
        server_->start();
        thread_ = std::thread([this] { io_.run(); });
    }
    ~RunningServer() {
        asio::post(io_, [this] { server_->stop(); });
        io_.stop();
        thread_.join();
    }
    std::uint16_t port() const { return server_->bound_port(); }
    HttpCounters counters() {
        std::promise<HttpCounters> result;
        asio::post(io_, [&] { result.set_value(server_->counters()); });
        return result.get_future().get();
    }

  private:
    boost::asio::io_context io_;
    std::ostringstream log_text_;
    Logger log_{log_text_, LogLevel::Error};
    std::unique_ptr<HttpServer> server_;
    std::thread thread_;
};

} // namespace

TEST_CASE("http: the page, the metrics and the JSON status") {
    RunningServer server;
    const auto page = test::http_get(server.port(), "/");
    CHECK(page.status == 200);
    CHECK(page.has_header("Content-Type: text/html; charset=utf-8"));
    CHECK(page.has_header("Content-Security-Policy: default-src 'none'; script-src 'nonce-"));
    CHECK(page.has_header("Cache-Control: no-store"));
    CHECK_THAT(page.body, Contains("216000064136"));

    const auto metrics = test::http_get(server.port(), "/metrics?x=1");
    CHECK(metrics.status == 200);
    CHECK(metrics.has_header("Content-Type: text/plain; version=0.0.4"));
    CHECK_THAT(metrics.body, Contains("ecu2mqtt_build_info{version=\"test\"} 1"));

    const auto status = test::http_get(server.port(), "/api/status");
    CHECK(status.status == 200);
    CHECK(nlohmann::json::parse(status.body)["ecus"][0]["id"] == "216000064136");

    CHECK(test::http_get(server.port(), "/nothing-here").status == 404);
    const auto head = test::http_request(server.port(), "HEAD /metrics HTTP/1.1\r\n\r\n");
    CHECK(head.status == 200);
    CHECK(head.body.empty());
}

TEST_CASE("http: read-only, bounded requests") {
    RunningServer server;
    const auto post =
        test::http_request(server.port(), "POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
    CHECK(post.status == 405);
    CHECK(post.has_header("Allow: GET, HEAD"));

    const auto with_body =
        test::http_request(server.port(), "GET / HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello");
    CHECK(with_body.status == 400);

    const auto huge_header =
        test::http_get(server.port(), "/", "X-Big: " + std::string(20000, 'a') + "\r\n");
    CHECK(huge_header.status == 431);

    std::string many;
    for (int i = 0; i < 100; ++i)
        many += "X-" + std::to_string(i) + ": 1\r\n";
    CHECK(test::http_get(server.port(), "/", many).status == 431);
    CHECK(server.counters().bad_requests == 3);
}

TEST_CASE("http: a slow request is cut off at the timeout") {
    HttpServerConfig config;
    config.request_timeout = 300ms;
    RunningServer server(config);
    test::TcpClient slow(server.port(), 3s);
    slow.send("GET / HTTP/1.1\r\n");
    const auto start = std::chrono::steady_clock::now();
    CHECK(slow.closed_by_peer());
    CHECK(std::chrono::steady_clock::now() - start < 2s);
    CHECK(test::http_get(server.port(), "/metrics").status == 200); // others still served
}

// At the limit a new connection is not closed at once (as it was): the one that has waited longest
// without sending a whole request is, so that slow clients cannot keep requests out.
TEST_CASE("http: at the connection limit, the connection waiting longest for its request is "
          "closed to make room") {
    HttpServerConfig config;
    config.max_connections = 2; // one slot for a request still arriving, one kept for a whole one
    RunningServer server(config);
    test::TcpClient first(server.port(), 2s);
    first.send("G");
    test::TcpClient second(server.port(), 2s);
    second.send("G");
    CHECK(first.closed_by_peer());
    test::TcpClient third(server.port(), 2s);
    CHECK(second.closed_by_peer());
    third.send("GET /metrics HTTP/1.1\r\n\r\n");
    CHECK(test::parse_http_answer(third.receive(64 << 20)).status == 200);
    const auto counters = server.counters();
    CHECK(counters.evicted_waiting == 2);
    CHECK(counters.refused_at_limit == 0);
}

namespace {

// Slowloris: `count` connections to the port, half dribbling a byte of a request that never
// ends every few milliseconds and half sending nothing; each one closed by the server is opened
// again, at most `max_reopened` times in all.
class SlowClients {
  public:
    SlowClients(std::uint16_t port, std::size_t count, std::size_t max_reopened)
        : port_(port), max_reopened_(max_reopened) {
        for (std::size_t i = 0; i < count; ++i)
            fds_.push_back(open_one());
        thread_ = std::thread([this] { run(); });
    }
    ~SlowClients() {
        stop_ = true;
        thread_.join();
        for (const int fd : fds_)
            if (fd >= 0)
                ::close(fd);
    }
    std::size_t reopened() const { return reopened_; }

  private:
    int open_one() {
        const int fd = test::connect_loopback(port_);
        if (fd >= 0)
            ::send(fd, "GET / HTTP/1.1\r\nX-Slow: ", 24, MSG_NOSIGNAL);
        return fd;
    }

    static bool closed(int fd) {
        char c;
        const auto n = ::recv(fd, &c, 1, MSG_DONTWAIT);
        return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    }

    void run() {
        while (!stop_) {
            for (std::size_t i = 0; i < fds_.size() && !stop_; ++i) {
                if (fds_[i] >= 0 && !closed(fds_[i])) {
                    if (i % 2 == 0)
                        ::send(fds_[i], "a", 1, MSG_NOSIGNAL);
                    continue;
                }
                if (fds_[i] >= 0)
                    ::close(fds_[i]);
                fds_[i] = -1;
                if (reopened_ < max_reopened_) {
                    ++reopened_;
                    fds_[i] = open_one();
                }
            }
            std::this_thread::sleep_for(20ms); // the pace of the dribble, not a wait for anything
        }
    }

    std::uint16_t port_;
    std::size_t max_reopened_;
    std::vector<int> fds_;
    std::atomic<std::size_t> reopened_{0};
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

} // namespace

TEST_CASE("http: slow clients beyond the limit do not keep the page and /metrics from being "
          "answered") {
    RunningServer server; // the defaults: 16 connections, 3 s for a request to arrive
    SlowClients slow(server.port(), 40, 20000);
    for (int i = 0; i < 30; ++i) {
        const std::string target = i % 2 == 0 ? "/metrics" : "/";
        const auto start = std::chrono::steady_clock::now();
        const auto answer = test::http_get(server.port(), target);
        INFO("request " << i << " for " << target);
        CHECK(answer.status == 200);
        CHECK(std::chrono::steady_clock::now() - start < 1s);
    }
    const auto counters = server.counters();
    CHECK(counters.requests == 30);
    CHECK(counters.evicted_waiting >= 24);
    CHECK(counters.refused_at_limit == 0);
}

TEST_CASE("http: only the allowed peers are answered") {
    HttpServerConfig config;
    config.allowed_peers = {"172.30.32.2"};
    RunningServer refusing(config);
    const auto answer = test::http_get(refusing.port(), "/");
    CHECK(answer.status == 0); // closed without a word
    CHECK(refusing.counters().refused_peers == 1);

    config.allowed_peers = {"172.30.32.2", "127.0.0.1"};
    RunningServer admitting(config);
    CHECK(test::http_get(admitting.port(), "/").status == 200);
}

TEST_CASE("http: the ingress path sets the page's base") {
    RunningServer server;
    const auto page =
        test::http_get(server.port(), "/", "X-Ingress-Path: /api/hassio_ingress/T0k3n\r\n");
    CHECK_THAT(page.body, Contains("<base href=\"/api/hassio_ingress/T0k3n/\">"));
    const auto hostile = test::http_get(server.port(), "/", "X-Ingress-Path: /\"><b>\r\n");
    CHECK(hostile.body.find("<base") == std::string::npos);
    CHECK(hostile.body.find("\"><b>") == std::string::npos);
}

} // namespace test_http_server
