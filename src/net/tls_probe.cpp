#include "ecu2mqtt/net/tls_probe.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include "ecu2mqtt/net/host_port.hpp"
#include "ecu2mqtt/net/peer_verification.hpp"

#include <boost/asio/ssl.hpp>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <memory>

namespace ecu2mqtt {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

std::string trusted_cas(const TlsTarget& target) {
    return target.ca_file.empty() ? "the system CAs" : target.ca_file;
}

// The certificate check's failure, as the user can act on it.
std::string verify_failure(int error, const TlsTarget& target) {
    const std::string detail = chain_error_text(error);
    switch (chain_problem(error)) {
    case ChainProblem::unknown_ca:
        return "unknown CA: the broker's certificate is not signed by a CA trusted here (" +
               detail + "; trusted: " + trusted_cas(target) +
               "). Give the broker's CA certificate with --mqtt-ca-file";
    case ChainProblem::expired:
        return "expired certificate: the broker's certificate (or its CA's) has expired (" +
               detail + "). Renew it on the broker";
    case ChainProblem::not_yet_valid:
        return "certificate not yet valid (" + detail +
               "): renew it on the broker, or check this host's clock";
    case ChainProblem::other:
        break;
    }
    return "certificate rejected: " + detail;
}

struct Probe : std::enable_shared_from_this<Probe> {
    Probe(asio::any_io_executor executor, TlsTarget t, std::function<void(std::string)> d)
        : context(asio::ssl::context::tls_client), resolver(executor), timer(executor),
          target(std::move(t)), done(std::move(d)) {}

    void start(std::chrono::milliseconds timeout) {
        boost::system::error_code ec;
        if (target.ca_file.empty())
            context.set_default_verify_paths(ec);
        else
            context.load_verify_file(target.ca_file, ec);
        if (ec && !target.ca_file.empty() && !std::ifstream(target.ca_file))
            return finish("cannot read the CA file " + target.ca_file + ": " +
                          std::strerror(errno));
        if (ec)
            return finish("cannot use the CA certificates in " + trusted_cas(target) + ": " +
                          ec.message() + " (expected PEM certificates)");
        stream.emplace(resolver.get_executor(), context);
        // The verdict is a member: the handshake never outlives this probe.
        verify_peer(*stream, target.host, verdict);

        timer.expires_after(timeout);
        timer.async_wait([self = shared_from_this(), timeout](boost::system::error_code wait) {
            if (wait)
                return;
            self->finish("no TLS answer from " + self->where() + " within " +
                         std::to_string(timeout.count()) + " ms");
        });
        resolver.async_resolve(
            target.host, std::to_string(target.port),
            [self = shared_from_this()](boost::system::error_code e,
                                        const tcp::resolver::results_type& results) {
                // Not reaching the broker at all is no TLS problem: the client's own failure
                // says enough.
                if (e)
                    return self->finish("");
                asio::async_connect(self->stream->next_layer(), results,
                                    [self](boost::system::error_code c, const tcp::endpoint&) {
                                        if (c)
                                            return self->finish("");
                                        self->handshake();
                                    });
            });
    }

    void handshake() {
        stream->async_handshake(
            asio::ssl::stream_base::client,
            [self = shared_from_this()](boost::system::error_code e) { self->handshake_done(e); });
    }

    void handshake_done(boost::system::error_code e) {
        if (!e)
            return finish("");
        if (verdict.host_mismatch)
            return finish("hostname mismatch: the broker's certificate is not issued for \"" +
                          target.host + "\". Connect by a name (or address) the certificate holds");
        if (verdict.chain_error != 0)
            return finish(verify_failure(verdict.chain_error, target));
        std::string reason = "TLS handshake with " + where() + " failed: " + e.message();
        // A broker without TLS on this port takes the handshake for a bad MQTT packet and
        // hangs up; a web server or the like answers in plain text.
        if (e == asio::error::connection_reset || e == asio::error::eof ||
            e == asio::ssl::error::stream_truncated ||
            e.message().find("wrong version number") != std::string::npos)
            reason += ". Does the broker speak TLS on this port? For plain MQTT use mqtt://";
        finish(reason);
    }

    std::string where() const { return target.host + ":" + std::to_string(target.port); }

    void finish(std::string reason) {
        if (finished)
            return;
        finished = true;
        timer.cancel();
        resolver.cancel();
        if (stream) {
            boost::system::error_code ignored;
            stream->next_layer().close(ignored);
        }
        // Called from the executor, never from within start().
        asio::post(resolver.get_executor(),
                   [done = std::move(done), reason = std::move(reason)] { done(reason); });
    }

    asio::ssl::context context;
    tcp::resolver resolver;
    asio::steady_timer timer;
    std::optional<asio::ssl::stream<tcp::socket>> stream;
    TlsTarget target;
    std::function<void(std::string)> done;
    PeerVerification verdict;
    bool finished = false;
};

} // namespace

std::optional<TlsTarget> tls_target_of(const std::string& broker_url, const std::string& ca_file) {
    constexpr std::string_view scheme = "mqtts://";
    if (!broker_url.starts_with(scheme))
        return std::nullopt;
    std::string authority = broker_url.substr(scheme.size());
    if (const auto slash = authority.find('/'); slash != std::string::npos)
        authority.resize(slash);
    if (const auto at = authority.rfind('@'); at != std::string::npos)
        authority.erase(0, at + 1);
    try {
        const auto parsed = parse_host_port(authority);
        return TlsTarget{parsed.host, parsed.port.value_or(8883), ca_file};
    } catch (const std::invalid_argument&) {
        return std::nullopt;
    }
}

void diagnose_tls(asio::any_io_executor executor, TlsTarget target,
                  std::chrono::milliseconds timeout, std::function<void(std::string)> done) {
    std::make_shared<Probe>(std::move(executor), std::move(target), std::move(done))
        ->start(timeout);
}

} // namespace ecu2mqtt
