// The state messages of one upload, from the figures its ledger decided on. Pure: plain inputs,
// no clock and no broker.
#pragma once

#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

// What the payloads of one reading take from the ledger's decision on it.
struct ReadingFigures {
    double state_lifetime_kwh = 0;   // the trusted counter; 0 before any
    std::optional<double> today_kwh; // ECU-day energy with this reading
    std::optional<std::int64_t> clock_offset_s;
    std::vector<std::string> refused_inverters;  // beyond the limit: not published
    std::vector<KnownInverter> absent_inverters; // known but not in this live upload: 0 W
};

// The newest live reading as the ledger keeps it, to rebuild the ECU state after a restart.
struct LedgerLiveFigures {
    std::string ecu_model;
    LocalDateTime timestamp;
    double power_w = 0;
    double lifetime_kwh = 0;
    int inverters_online = 0;
};

// The ECU state payload of the newest live reading, with today's energy and clock offset.
// `live_state` is the last one published (null after a restart: rebuilt from `ledger_live`, with
// `last_seen_of_live` as its `last_seen`). Null when there is no live reading at all.
nlohmann::json live_state_payload(const std::string& id,
                                  const std::optional<LedgerLiveFigures>& ledger_live,
                                  std::optional<double> today_kwh, const nlohmann::json& live_state,
                                  std::optional<std::int64_t> clock_offset_s,
                                  const PolledEcuFacts& polled,
                                  const std::string& last_seen_of_live);

// A live reading: the state of every inverter it reports (and of the known ones it does not,
// at 0 W), then the ECU state. `state` is set to the ECU state payload.
struct LiveMessages {
    std::vector<OutgoingMessage> batch;
    nlohmann::json state;
};
LiveMessages live_messages(const TopicScheme& topics, const std::string& id,
                           const RealtimeUpload& upload, const ReadingFigures& figures,
                           const std::string& last_seen, const PolledEcuFacts& polled,
                           std::int64_t polled_fresh_since_s);

// A late reading: published once, with its own timestamp, on the history topic; when it changed
// today's energy (`today_before` was the ledger's figure), `live_state` is published again with
// the new value.
std::vector<OutgoingMessage>
late_messages(const TopicScheme& topics, const std::string& id, const RealtimeUpload& upload,
              const ReadingFigures& figures, const std::string& last_seen,
              std::optional<double> today_before, const nlohmann::json& live_state);

} // namespace ecu2mqtt
