// Every tracked ECU's ledger: the --max-ecus cap and eviction, forgetting, and the periodic
// checks (offline, the ECU's midnight, inverter and gap expiry). Pure: time is passed in.
#pragma once

#include "ecu2mqtt/ledger/ecu_admission.hpp"
#include "ecu2mqtt/ledger/ecu_ledger.hpp"

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace ecu2mqtt {

struct RegistryConfig {
    // Uploads of ECUs beyond `max_ecus` are answered but not tracked; inverters beyond
    // `max_inverters_per_ecu` are left out of their ECU's readings.
    std::size_t max_ecus = 16;
    std::size_t max_inverters_per_ecu = 128;
    std::chrono::seconds ecu_timeout{15 * 60};
    // An inverter not reported for this long is forgotten; so is an ECU silent that long.
    std::chrono::seconds forget_inverter_after{30 * 24 * 3600};
    // A gap the ECU has not sent again by then is given up, with a warning.
    std::chrono::hours gap_expiry{48};

    LedgerConfig ledger_config() const;
};

// Whether an upload of the ECU is being written or waits: its ledger must stay meanwhile.
using EcuBusy = std::function<bool(const std::string& ecu_id)>;

class EcuRegistry {
  public:
    using TimePoint = std::chrono::system_clock::time_point;

    explicit EcuRegistry(RegistryConfig config);

    const RegistryConfig& config() const { return config_; }

    struct Admitted {
        bool admitted = false;       // false: refused, the cap is reached by ECUs that stay
        EcuLedger* ledger = nullptr; // the ECU's, when tracked already
        // Quiet ECUs below kEstablishedAfter readings, to forget first (the caller clears what it
        // published of them, then calls forget()); their ledgers are still here.
        std::vector<std::string> evict;
    };
    // The ECU's ledger; a new id is admitted when there is room, or room can be made. At the cap
    // an id with a history of uploads is never evicted for a new one (see ecu_admission.hpp).
    // For a new id `ledger` stays null: add() creates it once the evicted ones are forgotten.
    Admitted admit(const std::string& id, const EcuBusy& busy);
    // Creates the ledger of an admitted new id.
    EcuLedger& add(const std::string& id);
    // A ledger loaded from the store (replaces one of the same id).
    EcuLedger& insert(EcuLedger ledger);
    bool forget(const std::string& id);

    EcuLedger* find(const std::string& id);
    const EcuLedger* find(const std::string& id) const;
    bool contains(const std::string& id) const { return ledgers_.contains(id); }
    const std::map<std::string, EcuLedger>& ledgers() const { return ledgers_; }

    // Inverters of `upload` that must not join ECU `id`: one numbered like a tracked ECU (it
    // would take over that ECU's device), and one another, established ECU reported within the
    // last day (a made-up id sending a real inverter's serial number must not take it over).
    std::set<std::string> held_elsewhere(const std::string& id, const RealtimeUpload& upload,
                                         std::int64_t now_s) const;

    struct EcuTick {
        std::string id;
        EcuLedger::Tick tick;
        bool changed = false; // the ledger changed: its stored state is behind
    };
    struct Ticks {
        std::vector<EcuTick> ecus; // every ECU, in id order
        // ECUs silent (and not busy) for longer than forget_inverter_after: to forget (a
        // replaced ECU, or an id someone made up). Still here until forget().
        std::vector<std::string> silent;
    };
    Ticks tick(TimePoint now, const EcuBusy& busy);

    // What the status page shows of each ECU.
    struct View {
        std::string ecu_id;
        std::optional<double> today_kwh;
        std::optional<std::int64_t> clock_offset_s;
        bool online = false;
        std::string model;
        std::optional<LiveReading> live;
        std::string time_zone;                 // empty: the learned clock offset gives its day
        std::vector<LedgerInverter> inverters; // every inverter it tracks, by id
    };
    std::vector<View> snapshot() const;

  private:
    RegistryConfig config_;
    std::map<std::string, EcuLedger> ledgers_;
};

} // namespace ecu2mqtt
