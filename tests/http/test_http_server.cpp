// The HTTP server over real loopback sockets, in-process: routes, limits and refusals.
#include "ecu2mqtt/http/http_server.hpp"
#include "support/http_client.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <future>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

using namespace ecu2mqtt;
namespace asio = boost::asio;
using namespace std::chrono_literals;
using Catch::Contains;

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

TEST_CASE("http: connections beyond the limit are closed at once") {
    HttpServerConfig config;
    config.max_connections = 2;
    RunningServer server(config);
    test::TcpClient first(server.port()), second(server.port());
    first.send("G");
    second.send("G");
    std::this_thread::sleep_for(100ms);
    test::TcpClient third(server.port(), 2s);
    CHECK(third.closed_by_peer());
    CHECK(server.counters().refused_at_limit == 1);
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
