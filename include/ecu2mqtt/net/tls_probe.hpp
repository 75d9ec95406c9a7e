// Names why a TLS connection to the broker fails: an unknown CA, a host name the certificate
// does not hold, an expired certificate. The MQTT client itself reports only that it failed.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

namespace ecu2mqtt {

struct TlsTarget {
    std::string host;
    std::uint16_t port = 8883;
    std::string ca_file; // empty: the system CAs
};

// The target of an "mqtts://HOST[:PORT]" broker URL (port 8883 by default); nullopt for any
// other URL.
std::optional<TlsTarget> tls_target_of(const std::string& broker_url, const std::string& ca_file);

// Makes one TLS handshake with `target` as the MQTT client would (the same CAs, the host name
// checked against the certificate) and calls `done` on the executor with what failed, in words
// that say what to fix, or with "" when the handshake succeeds. Never longer than `timeout`.
void diagnose_tls(boost::asio::any_io_executor executor, TlsTarget target,
                  std::chrono::milliseconds timeout, std::function<void(std::string)> done);

} // namespace ecu2mqtt
