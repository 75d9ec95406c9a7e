// The registry of ECU ledgers with a movable clock: the cap and eviction, forgetting, midnight and
// the offline timeout, decided without a broker or a store.
#include "ecu2mqtt/ledger/ecu_registry.hpp"

#include <algorithm>
#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_ecu_registry {
namespace {

constexpr std::int64_t kHost = 1780000000; // some host UTC second in 2026
const LocalDateTime kNoon{2026, 5, 28, 12, 0, 0};

// Host time, moved by each test; the ECUs' clocks read kNoon at kHost.
struct MovableClock {
    std::chrono::system_clock::time_point now{std::chrono::seconds(kHost)};
    void advance(std::chrono::seconds by) { now += by; }
};

RealtimeUpload upload_of(const std::string& ecu, const MovableClock& clock, double lifetime_kwh,
                         const std::string& inverter = "408000100000") {
    RealtimeUpload u;
    u.signature = "APS18";
    u.ecu_id = ecu;
    u.ecu_model = "ECU-R";
    u.timestamp = add_seconds(
        kNoon,
        std::chrono::duration_cast<std::chrono::seconds>(clock.now.time_since_epoch()).count() -
            kHost);
    u.lifetime_energy_kwh = lifetime_kwh;
    InverterReading inv;
    inv.uid = inverter;
    inv.model_code = "01";
    inv.model = "YC600";
    inv.power_w = 200;
    inv.channels = {{1, 32, 3, 100, {}}, {2, 32, 3, 100, {}}};
    u.inverters.push_back(inv);
    u.power_w = 200;
    u.inverters_online = 1;
    return u;
}

// One upload of `ecu`, kept, as the pipeline does: admitted, decided, committed.
void keep_upload(EcuRegistry& registry, const std::string& ecu, const MovableClock& clock,
                 double lifetime_kwh, const std::string& inverter = "408000100000") {
    const auto admitted = registry.admit(ecu, [](const std::string&) { return false; });
    REQUIRE(admitted.admitted);
    for (const auto& quiet : admitted.evict)
        registry.forget(quiet);
    EcuLedger& ledger = admitted.ledger ? *admitted.ledger : registry.add(ecu);
    ledger.commit(ledger.decide(upload_of(ecu, clock, lifetime_kwh, inverter), clock.now));
}

const EcuBusy kIdle = [](const std::string&) { return false; };

bool has_event(const std::vector<LedgerEvent>& events, const std::string& name) {
    return std::any_of(events.begin(), events.end(),
                       [&](const LedgerEvent& e) { return e.name == name; });
}

const EcuRegistry::EcuTick& tick_of(const EcuRegistry::Ticks& ticks, const std::string& id) {
    const auto it = std::find_if(ticks.ecus.begin(), ticks.ecus.end(),
                                 [&](const auto& t) { return t.id == id; });
    REQUIRE(it != ticks.ecus.end());
    return *it;
}

} // namespace

TEST_CASE("registry: below the cap every new ECU gets a ledger; at it, the quietest newcomer "
          "makes room",
          "[registry]") {
    RegistryConfig config;
    config.max_ecus = 2;
    config.ecu_timeout = 15min;
    EcuRegistry registry(config);
    MovableClock clock;
    keep_upload(registry, "216000000001", clock, 10.0);
    clock.advance(60s);
    keep_upload(registry, "216000000002", clock, 20.0);
    CHECK(registry.ledgers().size() == 2);

    // Both online: nobody can be evicted, the new id is refused.
    clock.advance(60s);
    CHECK_FALSE(registry.admit("216000000003", kIdle).admitted);

    // Both offline after the timeout, one reading kept each: the one heard longest ago goes.
    clock.advance(16min);
    registry.tick(clock.now, kIdle);
    const auto admitted = registry.admit("216000000003", kIdle);
    CHECK(admitted.admitted);
    CHECK(admitted.ledger == nullptr);
    CHECK(admitted.evict == std::vector<std::string>{"216000000001"});
    // Nothing is forgotten before the caller says so.
    CHECK(registry.contains("216000000001"));

    SECTION("an ECU being written is never evicted") {
        const auto busy_one = [](const std::string& id) { return id == "216000000001"; };
        CHECK(registry.admit("216000000003", busy_one).evict ==
              std::vector<std::string>{"216000000002"});
    }
    SECTION("an established ECU keeps its slot") {
        for (int i = 0; i < 3; ++i) {
            clock.advance(5min);
            keep_upload(registry, "216000000001", clock, 10.0 + i);
            keep_upload(registry, "216000000002", clock, 20.0 + i);
        }
        clock.advance(16min);
        registry.tick(clock.now, kIdle);
        CHECK_FALSE(registry.admit("216000000003", kIdle).admitted);
    }
    SECTION("a tracked ECU is always admitted, with its ledger") {
        const auto again = registry.admit("216000000002", kIdle);
        CHECK(again.admitted);
        CHECK(again.ledger == registry.find("216000000002"));
        CHECK(again.evict.empty());
    }
}

TEST_CASE("registry: below the cap a new ECU is admitted without going over the tracked ones",
          "[registry]") {
    // A burst of new ECUs must not cost a walk over every tracked ECU for each one.
    RegistryConfig config;
    config.max_ecus = 100;
    EcuRegistry registry(config);
    MovableClock clock;
    for (int i = 0; i < 50; ++i)
        keep_upload(registry, std::to_string(216000000100LL + i), clock, 10.0);
    int asked = 0;
    const auto admitted = registry.admit("216000000300", [&asked](const std::string&) {
        ++asked;
        return false;
    });
    CHECK(admitted.admitted);
    CHECK(admitted.evict.empty());
    CHECK(asked == 0);
}

TEST_CASE("registry: an ECU silent for forget_inverter_after is named to forget, unless busy",
          "[registry]") {
    RegistryConfig config;
    config.forget_inverter_after = std::chrono::seconds(2 * 86400);
    EcuRegistry registry(config);
    MovableClock clock;
    keep_upload(registry, "216000000001", clock, 10.0);
    keep_upload(registry, "216000000002", clock, 20.0);

    clock.advance(std::chrono::seconds(2 * 86400));
    CHECK(registry.tick(clock.now, kIdle).silent.empty());
    keep_upload(registry, "216000000002", clock, 21.0);

    clock.advance(1s);
    const auto ticks = registry.tick(clock.now, kIdle);
    CHECK(ticks.silent == std::vector<std::string>{"216000000001"});
    // Its inverter, unseen as long, is forgotten by its own ledger.
    CHECK(tick_of(ticks, "216000000001").tick.forgotten_inverters ==
          std::vector<std::string>{"408000100000"});
    CHECK(tick_of(ticks, "216000000001").changed);

    const auto writing = [](const std::string& id) { return id == "216000000001"; };
    clock.advance(1s);
    CHECK(registry.tick(clock.now, writing).silent.empty());

    CHECK(registry.forget("216000000001"));
    CHECK_FALSE(registry.contains("216000000001"));
    CHECK(registry.snapshot().size() == 1);
}

TEST_CASE("registry: the ECU's midnight resets today's energy once, and is a change to save",
          "[registry]") {
    EcuRegistry registry(RegistryConfig{});
    MovableClock clock;
    keep_upload(registry, "216000000001", clock, 100.0);
    clock.advance(5min);
    keep_upload(registry, "216000000001", clock, 100.5);
    REQUIRE(registry.snapshot().front().today_kwh == Approx(0.5));

    // The ECU's clock read noon at the start: its midnight is twelve hours on.
    clock.advance(std::chrono::seconds(12 * 3600 - 5 * 60 - 1));
    const auto before = registry.tick(clock.now, kIdle);
    CHECK_FALSE(tick_of(before, "216000000001").tick.today_reset_to);

    clock.advance(2s);
    const auto at_midnight = registry.tick(clock.now, kIdle);
    const auto& t = tick_of(at_midnight, "216000000001");
    REQUIRE(t.tick.today_reset_to);
    CHECK(*t.tick.today_reset_to == Approx(0.0));
    CHECK(has_event(t.tick.events, "daily_energy_reset"));
    CHECK(t.changed);
    CHECK(registry.snapshot().front().today_kwh == Approx(0.0));

    clock.advance(10s);
    CHECK_FALSE(tick_of(registry.tick(clock.now, kIdle), "216000000001").tick.today_reset_to);
}

TEST_CASE("registry: silence past the ECU timeout makes it offline once", "[registry]") {
    RegistryConfig config;
    config.ecu_timeout = 10min;
    EcuRegistry registry(config);
    MovableClock clock;
    keep_upload(registry, "216000000001", clock, 10.0);
    CHECK(registry.snapshot().front().online);

    clock.advance(10min);
    CHECK_FALSE(tick_of(registry.tick(clock.now, kIdle), "216000000001").tick.went_offline);
    clock.advance(1s);
    const auto ticks = registry.tick(clock.now, kIdle);
    CHECK(tick_of(ticks, "216000000001").tick.went_offline);
    CHECK(tick_of(ticks, "216000000001").changed);
    CHECK_FALSE(registry.snapshot().front().online);
    clock.advance(1min);
    CHECK_FALSE(tick_of(registry.tick(clock.now, kIdle), "216000000001").tick.went_offline);
}

TEST_CASE("registry: an inverter another established ECU reported today is held; one numbered "
          "like a tracked ECU always",
          "[registry]") {
    EcuRegistry registry(RegistryConfig{});
    MovableClock clock;
    for (int i = 0; i < 3; ++i) { // established
        keep_upload(registry, "216000000001", clock, 10.0 + i, "408000100000");
        clock.advance(5min);
    }
    keep_upload(registry, "216000000002", clock, 20.0, "408000200000");
    const auto now_s = [&] {
        return std::chrono::duration_cast<std::chrono::seconds>(clock.now.time_since_epoch())
            .count();
    };
    CHECK(registry.held_elsewhere("216000000003", upload_of("216000000003", clock, 1.0), now_s()) ==
          std::set<std::string>{"408000100000"});
    // Not established: its inverter may move.
    CHECK(registry
              .held_elsewhere("216000000003", upload_of("216000000003", clock, 1.0, "408000200000"),
                              now_s())
              .empty());
    CHECK(registry.held_elsewhere("216000000003",
                                  upload_of("216000000003", clock, 1.0, "216000000002"),
                                  now_s()) == std::set<std::string>{"216000000002"});
    clock.advance(std::chrono::seconds(86400));
    CHECK(registry.held_elsewhere("216000000003", upload_of("216000000003", clock, 1.0), now_s())
              .empty());
}

} // namespace test_ecu_registry
