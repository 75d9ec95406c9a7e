// The lifetime counter's model: what a plant can add to its counter in a given time, and when a
// run of readings that disagree with the trusted counter shows a new level (a reset, a new ECU).
#pragma once

#include "ecu2mqtt/protocol/ecu_message.hpp"
#include "ecu2mqtt/protocol/local_time.hpp"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct LedgerInverter;

// One reading of the counter: when the ECU stamped it, when it arrived, what it said.
struct CounterSample {
    LocalDateTime timestamp;
    std::int64_t received_s = 0; // host time
    double lifetime_kwh = 0;
};

// Pure arithmetic, documented in README "Energy and the lifetime counter".
namespace counter_model {

// Watts per DC channel that no APsystems inverter reaches (the largest make about 500 W); the
// margin doubles it again.
inline constexpr double kChannelCeilingW = 1000.0;
inline constexpr double kMargin = 2.0;
// Channels assumed at least, for an ECU whose inverters are not known (yet): 16 kW.
inline constexpr int kMinimumChannels = 8;
// The counter has 0.1 kWh steps: a few steps either way are rounding, not production.
inline constexpr double kRoundingKwh = 0.5;
// Uploads agreeing on a new level must be spread over this much host time per upload after the
// first (an ECU uploads every five minutes; a little jitter allowed): three of them then span
// nine minutes, in which the real ECU, if it is there, uploads and breaks a forger's run.
inline constexpr std::int64_t kRunSpacingS = 270;

// The most the plant can make, in kW with the margin: every channel of the inverters known or in
// this upload at kChannelCeilingW, four for each inverter block that did not decode, and at
// least kMinimumChannels.
double ceiling_kw(const std::map<std::string, LedgerInverter>& known, const RealtimeUpload& upload);

// The most the counter can rise from `from` to `to`: the ceiling over the longer of the ECU's and
// the host's elapsed time, plus the rounding allowance.
double plausible_rise_kwh(const CounterSample& from, const CounterSample& to, double ceiling_kw);

enum class Fit {
    Agrees, // within what the plant can make (or a rounding step down)
    Jump,   // up by more than the plant can make: counter-suspect
    Dip,    // down by more than rounding
};

// How `next`, a newer reading, follows the trusted `from`.
Fit fit_after(const CounterSample& from, const CounterSample& next, double ceiling_kw);

// Whether `earlier`, stamped before the trusted `newest` (a re-send, or a clock set back), fits
// with it: not above it by more than the plant made until `earlier` arrived, and not below it by
// more than the plant can make from the one to the other by the ECU's clock.
bool fits_before(const CounterSample& newest, const CounterSample& earlier, double ceiling_kw);

// Adds a reading that disagrees with the trusted counter to `run`, the readings in a row that do;
// it restarts the run when it does not follow its last reading as a plant's counter would. True
// once the run has `adopt_after` readings spread over enough time: its level is then adopted.
bool extend_run(std::vector<CounterSample>& run, const CounterSample& next, double ceiling_kw,
                int adopt_after);

} // namespace counter_model
} // namespace ecu2mqtt
