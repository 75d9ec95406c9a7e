// The state messages of one upload as its ledger decided it, and the ECU state the store keeps.
// Pure: plain inputs, no clock and no broker.
#pragma once

#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/mqtt/mqtt_payloads.hpp"
#include "ecu2mqtt/mqtt/outbox.hpp"
#include "ecu2mqtt/mqtt/polled_facts.hpp"

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace ecu2mqtt {

KnownInverter known_from(const LedgerInverter& inverter);

// What the store keeps of an ECU: its ledger, the newest live state payload and what polling it
// found. (The kept readings are stored row by row, as they come.)
std::string state_record(const std::string& id, const EcuLedgerState& state,
                         const nlohmann::json& live_state, const PolledEcuFacts& polled);

// The ECU state payload of the newest live reading, with today's energy and clock offset.
// `live_state` is the last one published (null after a restart: rebuilt from the ledger, with
// `last_seen_of_live` as its `last_seen`). Null when there is no live reading at all.
nlohmann::json live_state_payload(const std::string& id, const EcuLedgerState& ledger,
                                  const nlohmann::json& live_state,
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
                           const RealtimeUpload& upload, const UploadDecision& decision,
                           const std::string& last_seen, const PolledEcuFacts& polled,
                           std::int64_t polled_fresh_since_s);

// A late reading: published once, with its own timestamp, on the history topic; when it changed
// today's energy (`today_before` was the ledger's figure), `live_state` is published again with
// the new value.
std::vector<OutgoingMessage>
late_messages(const TopicScheme& topics, const std::string& id, const RealtimeUpload& upload,
              const UploadDecision& decision, const std::string& last_seen,
              std::optional<double> today_before, const nlohmann::json& live_state);

} // namespace ecu2mqtt
