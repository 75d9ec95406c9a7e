// One POST to PVOutput (or a compatible server): resolve, connect, TLS handshake verified against
// the system CAs and the host name, write, read, close, within a timeout; and the URL it goes to.
#pragma once

#include "ecu2mqtt/protocol/pvoutput_api.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace ecu2mqtt {

// Where to send: "https://HOST[:PORT][/PREFIX]" or "http://…" (a compatible server, a test).
struct PvoutputEndpoint {
    bool tls = true;
    std::string host;
    std::uint16_t port = 443;
    std::string prefix; // without a trailing '/'
};
// Throws std::invalid_argument saying what is wrong.
PvoutputEndpoint parse_pvoutput_url(const std::string& url);

struct PvoutputAnswer {
    std::string network_error; // set: no HTTP reply
    int status = 0;
    std::string body;
    PvoutputRateLimit rate;
};

struct PvoutputRequest {
    std::string path; // kPvoutputAddStatus, …
    std::string system_id;
    std::string api_key;
    std::string user_agent;
    std::string body;
};

// Starts the POST; `done` runs once, posted to `executor`, with the answer or the error (also
// after cancel()). The returned handle cancels it.
class PvoutputExchangeHandle {
  public:
    virtual ~PvoutputExchangeHandle() = default;
    virtual void cancel() = 0;
};
std::shared_ptr<PvoutputExchangeHandle>
start_pvoutput_exchange(boost::asio::any_io_executor executor, const PvoutputEndpoint& endpoint,
                        const PvoutputRequest& request, std::chrono::seconds timeout,
                        std::function<void(PvoutputAnswer)> done);

} // namespace ecu2mqtt
