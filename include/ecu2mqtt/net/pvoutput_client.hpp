// Uploads the PVOutput queue (store/pvoutput_queue) to PVOutput over HTTPS, on the service's
// io_context but never in an ECU's way: one request at a time, batches while there is a backlog,
// addstatus when current, addoutput once a day has ended. It honours the rate-limit headers,
// backs off exponentially on network errors and 5xx, and stops a system on its 401/403 (the
// other systems go on).
#pragma once

#include "ecu2mqtt/core/clock.hpp"
#include "ecu2mqtt/core/logger.hpp"
#include "ecu2mqtt/core/telemetry.hpp"
#include "ecu2mqtt/net/pvoutput_exchange.hpp"
#include "ecu2mqtt/protocol/pvoutput_api.hpp"
#include "ecu2mqtt/store/pvoutput_queue.hpp"
#include "ecu2mqtt/store/store.hpp"

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>

namespace ecu2mqtt {

struct PvoutputClientConfig {
    std::string api_key; // never logged, never shown
    PvoutputMapping mapping;
    std::string url = "https://pvoutput.org";
    bool donor = false;
    std::chrono::milliseconds poll{5000}; // how often an idle uploader looks at the queue
    std::chrono::seconds first_backoff{30};
    std::chrono::seconds max_backoff{3600};
    std::chrono::seconds request_timeout{30};
    std::string user_agent = "ecu2mqtt";
};

class PvoutputClient {
  public:
    PvoutputClient(boost::asio::any_io_executor executor, PvoutputClientConfig config, Store& store,
                   const Clock& clock, Logger& log);
    ~PvoutputClient();
    PvoutputClient(const PvoutputClient&) = delete;
    PvoutputClient& operator=(const PvoutputClient&) = delete;

    void start();
    // Cancels the timer and any request in flight (a shutdown); what was not acknowledged stays
    // pending and goes after the next start.
    void stop();
    PvoutputSnapshot snapshot();

  private:
    // What one PVOutput system has been told.
    struct SystemState {
        std::string refused;           // PVOutput refused its key and id (401/403): it is stopped
        std::int64_t not_before_s = 0; // paced after a 400, or held
        std::size_t alone = 0;         // after a 400 on a batch: statuses to send one at a time
        // A status refused alone (400) stays pending until a later one, sent alone, tells whether
        // the reason was its own (the later one is taken) or the system's (refused the same).
        std::optional<PvoutputStatus> suspect;
        std::string suspect_reason;
        std::string held; // PVOutput refuses every status for this reason: none marked, retried
        std::set<std::string> logged; // event and reason logged at warn since the last batch went
    };
    enum class Kind { Status, Batch, Output };

    void schedule(std::chrono::milliseconds after);
    void tick();
    bool expire_old();
    void watch_silent_ecus(); // logs each named ECU that fell silent once, shows them
    void send(Kind kind, std::string system_id, std::string body,
              std::vector<PvoutputStatus> statuses, std::optional<PvoutputDayOutput> output);
    void answered(Kind kind, const std::string& system_id, std::vector<PvoutputStatus> statuses,
                  std::optional<PvoutputDayOutput> output, PvoutputAnswer answer);
    void mark_then_continue(WriteBatch batch);
    void back_off(const std::string& error);
    void refused_alone(SystemState& state, const std::string& system_id, PvoutputStatus status,
                       const std::string& reason, WriteBatch& marks);
    bool first_time(SystemState& state, const std::string& event, const std::string& reason);
    std::int64_t pace_s() const; // between single requests after a 400, within the rate limit
    void refuse_system(const std::string& system_id, int http_status, const std::string& reason);
    std::vector<std::string> systems_to_send() const; // in the mapping, not refused
    std::int64_t now_s() const;
    std::string oldest_allowed_slot() const;

    boost::asio::any_io_executor executor_;
    PvoutputClientConfig config_;
    PvoutputEndpoint endpoint_;
    PvoutputLimits limits_;
    Store& store_;
    const Clock& clock_;
    Logger& log_;
    std::unique_ptr<PvoutputQueue> queue_;
    boost::asio::steady_timer timer_;
    std::shared_ptr<PvoutputExchangeHandle> in_flight_;
    std::shared_ptr<int> alive_ = std::make_shared<int>(0);
    bool running_ = false;
    bool busy_ = false; // a request or its marks are on their way
    std::chrono::seconds backoff_{0};
    std::int64_t not_before_s_ = 0;
    std::int64_t expiry_warned_day_ = -1;
    std::size_t next_system_ = 0;
    std::map<std::string, SystemState> systems_;
    std::set<std::pair<std::string, std::string>> silent_warned_; // ECU, system
    std::int64_t next_silent_check_s_ = 0;
    PvoutputSnapshot snapshot_;
};

} // namespace ecu2mqtt
