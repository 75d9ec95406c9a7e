#include "ecu2mqtt/net/pvoutput_exchange.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/net/peer_verification.hpp"

#include <boost/asio/ssl.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <stdexcept>

namespace ecu2mqtt {
namespace asio = boost::asio;
namespace http = boost::beast::http;
using asio::ip::tcp;

namespace {

// Why PVOutput's certificate was refused, named as the TLS probe names a broker's.
std::string certificate_failure(int error, const std::string& host) {
    const std::string detail = chain_error_text(error);
    switch (chain_problem(error)) {
    case ChainProblem::unknown_ca:
        return "unknown CA: the certificate of " + host + " is not signed by a CA trusted here (" +
               detail + "; trusted: the system CAs)";
    case ChainProblem::expired:
        return "expired certificate: " + host + "'s certificate (or its CA's) has expired";
    case ChainProblem::not_yet_valid:
        return "certificate not yet valid (" + detail + "): check this host's clock";
    case ChainProblem::other:
        break;
    }
    return "certificate rejected: " + detail;
}

// One POST: resolve, connect, (TLS handshake,) write, read, close. Never outlives its timeout.
struct PvoutputExchange final : PvoutputExchangeHandle,
                                std::enable_shared_from_this<PvoutputExchange> {
    PvoutputExchange(asio::any_io_executor executor, const PvoutputEndpoint& endpoint,
                     std::function<void(PvoutputAnswer)> done)
        : context(asio::ssl::context::tls_client), resolver(executor), timer(executor),
          endpoint(endpoint), done(std::move(done)) {}

    void start(std::chrono::seconds timeout) {
        if (endpoint.tls) {
            boost::system::error_code ec;
            context.set_default_verify_paths(ec);
            if (ec)
                return finish_error("cannot use the system CAs: " + ec.message());
            tls.emplace(resolver.get_executor(), context);
            verify_peer(*tls, endpoint.host, verdict);
        } else {
            plain.emplace(resolver.get_executor());
        }
        timer.expires_after(timeout);
        timer.async_wait([self = shared_from_this(), timeout](boost::system::error_code e) {
            if (!e)
                self->finish_error("no answer from " + self->where() + " within " +
                                   std::to_string(timeout.count()) + " s");
        });
        resolver.async_resolve(
            endpoint.host, std::to_string(endpoint.port),
            [self = shared_from_this()](boost::system::error_code e,
                                        const tcp::resolver::results_type& results) {
                if (e)
                    return self->finish_error("cannot resolve " + self->endpoint.host + ": " +
                                              e.message());
                asio::async_connect(self->socket(), results,
                                    [self](boost::system::error_code c, const tcp::endpoint&) {
                                        if (c)
                                            return self->finish_error("cannot connect to " +
                                                                      self->where() + ": " +
                                                                      c.message());
                                        self->connected();
                                    });
            });
    }

    void connected() {
        if (!tls)
            return exchange(*plain);
        tls->async_handshake(asio::ssl::stream_base::client, [self = shared_from_this()](
                                                                 boost::system::error_code e) {
            if (!e)
                return self->exchange(*self->tls);
            if (self->verdict.host_mismatch)
                return self->finish_error("TLS: hostname mismatch: the certificate of " +
                                          self->where() + " is not issued for \"" +
                                          self->endpoint.host + "\"");
            if (self->verdict.chain_error != 0)
                return self->finish_error(
                    "TLS: " + certificate_failure(self->verdict.chain_error, self->endpoint.host));
            self->finish_error("TLS handshake with " + self->where() + " failed: " + e.message());
        });
    }

    template <typename Stream> void exchange(Stream& stream) {
        http::async_write(
            stream, request,
            [self = shared_from_this(), &stream](boost::system::error_code e, std::size_t) {
                if (e)
                    return self->finish_error("sending to " + self->where() + ": " + e.message());
                http::async_read(
                    stream, self->buffer, self->response,
                    [self](boost::system::error_code r, std::size_t) {
                        if (r)
                            return self->finish_error("reading the reply of " + self->where() +
                                                      ": " + r.message());
                        PvoutputAnswer answer;
                        answer.status = static_cast<int>(self->response.result_int());
                        answer.body = self->response.body();
                        answer.rate = parse_rate_limit(self->header("X-Rate-Limit-Remaining"),
                                                       self->header("X-Rate-Limit-Limit"),
                                                       self->header("X-Rate-Limit-Reset"));
                        self->finish(std::move(answer));
                    });
            });
    }

    tcp::socket& socket() { return tls ? tls->next_layer() : *plain; }
    std::string_view header(std::string_view name) const {
        const auto value = response[boost::beast::string_view(name.data(), name.size())];
        return {value.data(), value.size()};
    }
    std::string where() const { return endpoint.host + ":" + std::to_string(endpoint.port); }

    void finish_error(std::string error) {
        PvoutputAnswer answer;
        answer.network_error = std::move(error);
        finish(std::move(answer));
    }
    void cancel() override { finish_error("stopped"); }

    void finish(PvoutputAnswer answer) {
        if (finished)
            return;
        finished = true;
        timer.cancel();
        resolver.cancel();
        if (tls || plain) {
            boost::system::error_code ignored;
            socket().close(ignored);
        }
        asio::post(resolver.get_executor(),
                   [done = std::move(done), answer = std::move(answer)]() mutable {
                       done(std::move(answer));
                   });
    }

    asio::ssl::context context;
    tcp::resolver resolver;
    asio::steady_timer timer;
    PvoutputEndpoint endpoint;
    std::optional<asio::ssl::stream<tcp::socket>> tls;
    std::optional<tcp::socket> plain;
    http::request<http::string_body> request;
    http::response<http::string_body> response;
    boost::beast::flat_buffer buffer;
    std::function<void(PvoutputAnswer)> done;
    PeerVerification verdict;
    bool finished = false;
};

} // namespace

PvoutputEndpoint parse_pvoutput_url(const std::string& url) {
    PvoutputEndpoint endpoint;
    std::string rest;
    if (url.starts_with("https://")) {
        rest = url.substr(8);
    } else if (url.starts_with("http://")) {
        endpoint.tls = false;
        endpoint.port = 80;
        rest = url.substr(7);
    } else {
        throw std::invalid_argument("must start with https:// (or http://)");
    }
    const auto slash = rest.find('/');
    const auto authority = rest.substr(0, slash);
    if (authority.find('@') != std::string::npos || rest.find_first_of("?#") != std::string::npos)
        throw std::invalid_argument("give the server only: no user, query or fragment (the key "
                                    "is --pvoutput-api-key)");
    const auto parsed = parse_host_port(authority); // throws std::invalid_argument
    endpoint.host = parsed.host;
    if (parsed.port)
        endpoint.port = *parsed.port;
    if (slash != std::string::npos) {
        endpoint.prefix = rest.substr(slash);
        while (!endpoint.prefix.empty() && endpoint.prefix.back() == '/')
            endpoint.prefix.pop_back();
    }
    return endpoint;
}

std::shared_ptr<PvoutputExchangeHandle>
start_pvoutput_exchange(asio::any_io_executor executor, const PvoutputEndpoint& endpoint,
                        const PvoutputRequest& request, std::chrono::seconds timeout,
                        std::function<void(PvoutputAnswer)> done) {
    auto exchange = std::make_shared<PvoutputExchange>(executor, endpoint, std::move(done));
    auto& message = exchange->request;
    message.method(http::verb::post);
    message.target(endpoint.prefix + request.path);
    message.version(11);
    const bool default_port = endpoint.port == (endpoint.tls ? 443 : 80);
    message.set(http::field::host,
                host_port_text(
                    {endpoint.host, default_port ? std::nullopt : std::optional(endpoint.port)}));
    message.set(http::field::user_agent, request.user_agent);
    message.set(http::field::content_type, "application/x-www-form-urlencoded");
    message.set(http::field::connection, "close");
    message.set("X-Pvoutput-Apikey", request.api_key);
    message.set("X-Pvoutput-SystemId", request.system_id);
    message.set("X-Rate-Limit", "1");
    message.body() = request.body;
    message.prepare_payload();
    exchange->start(timeout);
    return exchange;
}

} // namespace ecu2mqtt
