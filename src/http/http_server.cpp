#include "ecu2mqtt/http/http_server.hpp"

#include "ecu2mqtt/http/status_render.hpp"
#include "ecu2mqtt/net/asio.hpp"

#include <algorithm>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <cctype>
#include <cstdio>
#include <map>
#include <random>

namespace ecu2mqtt {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

std::string random_nonce() {
    std::random_device random;
    std::string out;
    for (int i = 0; i < 4; ++i) {
        char buf[9];
        std::snprintf(buf, sizeof buf, "%08x", static_cast<unsigned>(random()));
        out += buf;
    }
    return out;
}

struct Reply {
    http::status status = http::status::ok;
    std::string content_type = "text/plain; charset=utf-8";
    std::string body;
    std::string csp; // Content-Security-Policy, for the page
};

Reply plain(http::status status, std::string text) {
    return {status, "text/plain; charset=utf-8", std::move(text) + "\n", ""};
}

} // namespace

std::pair<std::string, std::uint16_t> parse_listen_endpoint(const std::string& text) {
    const auto colon = text.rfind(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == text.size())
        throw std::invalid_argument(
            "expected ADDR:PORT (e.g. 127.0.0.1:8099 or [::]:8099), got \"" + text + "\"");
    std::string address = text.substr(0, colon);
    if (address.front() == '[' && address.back() == ']')
        address = address.substr(1, address.size() - 2);
    else if (address.find(':') != std::string::npos)
        throw std::invalid_argument("write an IPv6 address in brackets, e.g. [::]:8099, got \"" +
                                    text + "\"");
    boost::system::error_code ec;
    asio::ip::make_address(address, ec);
    if (ec)
        throw std::invalid_argument("\"" + address + "\" is not an IP address");
    const std::string port_text = text.substr(colon + 1);
    if (port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string::npos ||
        std::stoul(port_text) > 65535)
        throw std::invalid_argument("expected a port from 0 to 65535, got \"" + port_text + "\"");
    return {address, static_cast<std::uint16_t>(std::stoul(port_text))};
}

std::string checked_ingress_path(std::string_view header) {
    if (header.empty() || header.size() > 256 || header.front() != '/')
        return "";
    const bool plain = std::all_of(header.begin(), header.end(), [](char c) {
        return std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' || c == '-' ||
               c == '.' || c == '~';
    });
    if (!plain || header.find("//") != std::string_view::npos)
        return "";
    while (!header.empty() && header.back() == '/')
        header.remove_suffix(1);
    return std::string(header);
}

struct HttpServer::Impl : std::enable_shared_from_this<HttpServer::Impl> {
    Impl(asio::io_context& io_context, HttpServerConfig c, std::function<StatusSnapshot()> s,
         Logger& logger)
        : io(io_context), acceptor(io_context), config(std::move(c)), status(std::move(s)),
          log(logger) {}

    struct Session : std::enable_shared_from_this<Session> {
        Session(tcp::socket socket, std::shared_ptr<Impl> owner, std::uint64_t serial)
            : stream(std::move(socket)), server(std::move(owner)), serial(serial),
              buffer(server->config.max_header_bytes + 1024) {
            parser.header_limit(static_cast<std::uint32_t>(server->config.max_header_bytes));
            parser.body_limit(0);
        }
        ~Session() { release(); }

        void start() {
            stream.expires_after(
                std::min(server->config.header_timeout, server->config.request_timeout));
            http::async_read(stream, buffer, parser,
                             [self = shared_from_this()](beast::error_code ec, std::size_t) {
                                 self->on_read(ec);
                             });
        }

        // No longer counted against the limits: closed to make room, or gone.
        void release() {
            if (!counted)
                return;
            counted = false;
            server->waiting.erase(serial);
            --server->open;
        }

        void on_read(beast::error_code ec) {
            server->waiting.erase(serial); // whole or not, it waits for its request no more
            if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted)
                return;
            if (ec == beast::error::timeout) {
                ++server->counters.bad_requests;
                return; // the stream is closed: nothing can be sent any more
            }
            if (ec == http::error::header_limit || ec == http::error::buffer_overflow) {
                ++server->counters.bad_requests;
                return send(plain(http::status::request_header_fields_too_large,
                                  "request headers too large"));
            }
            if (ec) {
                ++server->counters.bad_requests;
                return send(plain(http::status::bad_request, "bad request"));
            }
            const auto& request = parser.get();
            if (static_cast<std::size_t>(std::distance(request.begin(), request.end())) >
                server->config.max_header_fields) {
                ++server->counters.bad_requests;
                return send(plain(http::status::request_header_fields_too_large,
                                  "too many request headers"));
            }
            ++server->counters.requests;
            head_only = request.method() == http::verb::head;
            stream.expires_after(server->config.request_timeout);
            send(server->respond(request));
        }

        void send(Reply reply) {
            if (reply.body.size() > server->config.max_response_bytes)
                reply = plain(http::status::service_unavailable, "response too large");
            auto response = std::make_shared<http::response<http::string_body>>(reply.status, 11);
            response->set(http::field::server, "ecu2mqtt");
            response->set(http::field::content_type, reply.content_type);
            response->set(http::field::cache_control, "no-store");
            response->set("X-Content-Type-Options", "nosniff");
            response->set("Referrer-Policy", "no-referrer");
            if (!reply.csp.empty())
                response->set("Content-Security-Policy", reply.csp);
            if (reply.status == http::status::method_not_allowed)
                response->set(http::field::allow, "GET, HEAD");
            response->keep_alive(false);
            response->body() = std::move(reply.body);
            response->prepare_payload();
            if (head_only)
                response->body().clear(); // Content-Length stays that of the GET
            http::async_write(
                stream, *response,
                [self = shared_from_this(), response](beast::error_code, std::size_t) {
                    beast::error_code ignored;
                    self->stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
                });
        }

        beast::tcp_stream stream;
        std::shared_ptr<Impl> server;
        std::uint64_t serial; // accept order
        bool counted = true;
        beast::flat_buffer buffer;
        http::request_parser<http::empty_body> parser;
        bool head_only = false;
    };

    Reply respond(const http::request<http::empty_body>& request) {
        if (request.method() != http::verb::get && request.method() != http::verb::head)
            return plain(http::status::method_not_allowed, "only GET and HEAD");
        std::string_view path(request.target().data(), request.target().size());
        if (const auto query = path.find('?'); query != std::string_view::npos)
            path = path.substr(0, query);
        if (path == "/" || path == "/index.html") {
            const auto ingress = request.find("X-Ingress-Path");
            const std::string base =
                ingress == request.end()
                    ? std::string()
                    : checked_ingress_path({ingress->value().data(), ingress->value().size()});
            const std::string nonce = random_nonce();
            return {http::status::ok, "text/html; charset=utf-8",
                    status_page(status(), base, nonce),
                    "default-src 'none'; script-src 'nonce-" + nonce +
                        "'; style-src 'unsafe-inline'; connect-src 'self'; img-src data:; "
                        "base-uri 'self'; form-action 'none'"};
        }
        if (path == "/metrics")
            return {http::status::ok, "text/plain; version=0.0.4; charset=utf-8",
                    prometheus_metrics(status()), ""};
        if (path == "/api/status")
            return {http::status::ok, "application/json",
                    status_json(status()).dump(-1, ' ', false,
                                               nlohmann::json::error_handler_t::replace),
                    ""};
        return plain(http::status::not_found, "not found: try /, /metrics or /api/status");
    }

    bool admitted(const asio::ip::address& peer) const {
        if (allowed.empty())
            return true;
        // An IPv4 peer on a dual-stack socket arrives as ::ffff:a.b.c.d.
        const auto plain_peer =
            peer.is_v6() && peer.to_v6().is_v4_mapped()
                ? asio::ip::address(asio::ip::make_address_v4(asio::ip::v4_mapped, peer.to_v6()))
                : peer;
        return std::find(allowed.begin(), allowed.end(), plain_peer) != allowed.end();
    }

    void accept() {
        acceptor.async_accept(
            [self = shared_from_this()](beast::error_code ec, tcp::socket socket) {
                if (ec == asio::error::operation_aborted || !self->acceptor.is_open())
                    return;
                if (!ec)
                    self->admit(std::move(socket));
                self->accept();
            });
    }

    void admit(tcp::socket socket) {
        beast::error_code ec;
        const auto peer = socket.remote_endpoint(ec);
        if (ec)
            return;
        if (!admitted(peer.address())) {
            ++counters.refused_peers;
            log.debug("http_peer_refused", {{"peer", peer.address().to_string()}});
            return; // closed by the socket's destructor
        }
        // Connections still waiting for their request may hold only part of the slots: the
        // rest stay for requests that arrive whole. Past that share, or at the limit, the one
        // waiting longest is closed, as the ECU listener does, so that slow clients cannot
        // hold the status page and /metrics.
        if (waiting.size() >= max_waiting() || open >= config.max_connections)
            close_longest_waiting(peer.address().to_string());
        if (open >= config.max_connections) {
            ++counters.refused_at_limit;
            log.debug("http_connection_limit", {{"peer", peer.address().to_string()}});
            return;
        }
        ++open;
        const auto session =
            std::make_shared<Session>(std::move(socket), shared_from_this(), ++last_serial);
        waiting.emplace(session->serial, session);
        session->start();
    }

    std::size_t max_waiting() const {
        const std::size_t kept_for_whole = std::max<std::size_t>(1, config.max_connections / 4);
        return config.max_connections > kept_for_whole ? config.max_connections - kept_for_whole
                                                       : 1;
    }

    void close_longest_waiting(const std::string& newcomer) {
        std::shared_ptr<Session> session;
        while (!session && !waiting.empty()) {
            session = waiting.begin()->second.lock();
            if (!session) // already going
                waiting.erase(waiting.begin());
        }
        if (!session)
            return;
        session->release(); // counts as gone now; its read ends on its own
        beast::error_code ignored;
        session->stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
        session->stream.close();
        ++counters.evicted_waiting;
        // Warn on the first and then every 1000th: a flood must not flood the log too.
        if (counters.evicted_waiting % 1000 == 1)
            log.warn("http_connection_evicted",
                     {{"for", newcomer},
                      {"reason", "too many connections without a whole request"},
                      {"limit", std::to_string(max_waiting())},
                      {"evicted_total", std::to_string(counters.evicted_waiting)}});
    }

    asio::io_context& io;
    tcp::acceptor acceptor;
    HttpServerConfig config;
    std::function<StatusSnapshot()> status;
    Logger& log;
    std::vector<asio::ip::address> allowed;
    std::size_t open = 0;
    // Connections whose request has not arrived whole yet, oldest first.
    std::map<std::uint64_t, std::weak_ptr<Session>> waiting;
    std::uint64_t last_serial = 0;
    HttpCounters counters;
};

HttpServer::HttpServer(asio::io_context& io, HttpServerConfig config,
                       std::function<StatusSnapshot()> status, Logger& log)
    : impl_(std::make_shared<Impl>(io, std::move(config), std::move(status), log)) {}

HttpServer::~HttpServer() {
    stop();
}

void HttpServer::start() {
    boost::system::error_code ec;
    impl_->allowed.clear();
    for (const auto& text : impl_->config.allowed_peers) {
        const auto address = asio::ip::make_address(text, ec);
        if (ec)
            throw std::invalid_argument("not an IP address: \"" + text + "\"");
        impl_->allowed.push_back(address);
    }
    const auto address = asio::ip::make_address(impl_->config.address, ec);
    if (ec)
        throw std::invalid_argument("not an IP address: \"" + impl_->config.address + "\"");
    const tcp::endpoint endpoint(address, impl_->config.port);
    auto& acceptor = impl_->acceptor;
    acceptor.open(endpoint.protocol());
    acceptor.set_option(asio::socket_base::reuse_address(true));
    acceptor.bind(endpoint, ec);
    if (ec)
        throw std::system_error(ec, "HTTP port " + std::to_string(impl_->config.port));
    acceptor.listen();
    impl_->accept();
}

void HttpServer::stop() {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
}

std::uint16_t HttpServer::bound_port() const {
    boost::system::error_code ec;
    const auto endpoint = impl_->acceptor.local_endpoint(ec);
    return ec ? 0 : endpoint.port();
}

HttpCounters HttpServer::counters() const {
    return impl_->counters;
}

} // namespace ecu2mqtt
