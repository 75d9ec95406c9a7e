// What the pipeline hands from an ECU's ledger to the payload writer and to the store: plain
// figures, so that the publisher needs nothing of the ledger.
#pragma once

#include "ecu2mqtt/ledger/ecu_ledger.hpp"
#include "ecu2mqtt/mqtt/ecu_state_payload.hpp"

#include <nlohmann/json.hpp>
#include <optional>
#include <string>

namespace ecu2mqtt {

KnownInverter known_from(const LedgerInverter& inverter);

// What the payloads of a live or late reading take from its decision.
ReadingFigures reading_figures(const UploadDecision& decision);

// The newest live reading the ledger keeps; none before the first.
std::optional<LedgerLiveFigures> ledger_live_figures(const EcuLedgerState& state);

// What the store keeps of an ECU: its ledger, the newest live state payload and what polling it
// found. (The kept readings are stored row by row, as they come.)
std::string state_record(const std::string& id, const EcuLedgerState& state,
                         const nlohmann::json& live_state, const PolledEcuFacts& polled);

} // namespace ecu2mqtt
