// What was announced to Home Assistant and the clears of it not yet at the broker: kept by the
// store across restarts (and in a database written by the version before), and what the
// publisher clears at start, when a device is forgotten, and once the broker has a clear.
#include "ecu2mqtt/mqtt/announced_devices.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "support/temp_dir.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

namespace test_store_announced {
namespace {

const std::string kEcu = "216000064136";
const std::string kOld = "806000000001";
const std::string kKept = "806000000002";

// Commits `batch` and waits for it.
void commit(Store& store, boost::asio::io_context& io, WriteBatch batch) {
    std::optional<std::string> outcome;
    store.submit(std::move(batch), [&](const std::string& error) { outcome = error; });
    const auto deadline = std::chrono::steady_clock::now() + 10s;
    while (!outcome && std::chrono::steady_clock::now() < deadline) {
        io.restart();
        io.run_for(10ms);
    }
    REQUIRE(outcome);
    REQUIRE(outcome->empty());
}

std::int64_t single_number(const std::filesystem::path& file, const std::string& sql) {
    Database db(file, Database::Mode::ReadOnly);
    auto query = db.prepare(sql);
    REQUIRE(query.step());
    return query.column_int(0);
}

std::map<std::string, std::uint64_t> clears_of(Store& store) {
    std::map<std::string, std::uint64_t> clears;
    for (const auto& c : store.pending_clears())
        clears[c.topic] = c.readings_up_to;
    return clears;
}

} // namespace

TEST_CASE("the store keeps the devices announced and the clears not yet at the broker") {
    test::TempDir dir;
    const auto file = Store::file_in(dir.path);
    const AnnouncedDevices names{TopicScheme{}};
    const auto old = names.inverter(kEcu, kOld, true);
    {
        boost::asio::io_context io;
        Store store(file, {}, io.get_executor());
        WriteBatch announce;
        announce.announce_device(names.ecu(kEcu, true));
        announce.announce_device(old);
        commit(store, io, std::move(announce));
        WriteBatch forget;
        forget.drop_announced(kOld);
        forget.clear_topic({old.state_topic, kEcu, 7});
        forget.clear_topic({old.state_topic, kEcu, 5}); // an older bound does not lower it
        forget.clear_topic({old.availability_topic, kEcu, 7});
        commit(store, io, std::move(forget));
    }
    boost::asio::io_context io;
    Store store(file, {}, io.get_executor());
    const auto devices = store.announced_devices();
    REQUIRE(devices.size() == 1);
    CHECK(devices[0] == names.ecu(kEcu, true));
    CHECK(devices[0].config_topic == "homeassistant/device/ecu2mqtt_" + kEcu + "/config");
    CHECK(clears_of(store) ==
          std::map<std::string, std::uint64_t>{{old.state_topic, 7}, {old.availability_topic, 7}});

    // A settled clear leaves only if no later one (a higher bound) took its place.
    WriteBatch settle;
    settle.drop_clear({old.state_topic, kEcu, 6});
    settle.drop_clear({old.availability_topic, kEcu, 7});
    commit(store, io, std::move(settle));
    CHECK(clears_of(store) == std::map<std::string, std::uint64_t>{{old.state_topic, 7}});

    // Announced again (the inverter came back): its clears are dropped.
    WriteBatch back;
    back.announce_device(old);
    commit(store, io, std::move(back));
    CHECK(store.pending_clears().empty());
    CHECK(store.announced_devices().size() == 2);
}

TEST_CASE("a database of schema version 1 opens, keeps its data and gains the announced devices") {
    test::TempDir dir;
    const auto file = Store::file_in(dir.path);
    {
        boost::asio::io_context io;
        Store store(file, {}, io.get_executor());
        WriteBatch state;
        state.put_ecu_state(kEcu, R"({"ecu_id":"216000064136"})");
        commit(store, io, std::move(state));
    }
    { // as the version before left it
        Database db(file, Database::Mode::ReadWrite);
        db.exec("DROP TABLE announced_devices; DROP TABLE pending_clears; PRAGMA user_version = 1");
    }
    boost::asio::io_context io;
    Store store(file, {}, io.get_executor());
    CHECK(single_number(file, "PRAGMA user_version") == Store::kSchemaVersion);
    CHECK(store.ecu_states().size() == 1);
    CHECK(store.announced_devices().empty());
    const AnnouncedDevices names{TopicScheme{}};
    WriteBatch announce;
    announce.announce_device(names.ecu(kEcu, true));
    commit(store, io, std::move(announce));
    CHECK(store.announced_devices().size() == 1);
}

TEST_CASE("a forgotten device's clears stay until the broker has them and no stored reading "
          "names their topics") {
    AnnouncedDevices announced{TopicScheme{}};
    WriteBatch write;
    announced.announce(announced.ecu(kEcu, true), write);
    announced.announce(announced.inverter(kEcu, kOld, true), write);
    CHECK(write.size() == 2);
    WriteBatch again;
    announced.announce(announced.inverter(kEcu, kOld, true), again);
    CHECK(again.empty()); // as recorded: nothing to write

    WriteBatch forget;
    const auto topics = announced.forget(announced.inverter(kEcu, kOld, true), 12, forget);
    CHECK(topics.size() == 3);
    CHECK(announced.devices() == 1);
    CHECK(announced.pending_clears() == 3);

    WriteBatch settle;
    announced.settle(std::nullopt, settle);
    CHECK(settle.empty()); // not acknowledged yet
    for (const auto& topic : topics)
        announced.clear_acknowledged(topic);
    announced.settle(12, settle); // reading 12 may still name them
    CHECK(settle.empty());
    announced.settle(13, settle);
    CHECK(settle.size() == 3);
    CHECK(announced.pending_clears() == 0);
}

TEST_CASE("at start, what was announced and is no longer known is cleared, and clears of what is "
          "known again are dropped") {
    const AnnouncedDevices names{TopicScheme{}};
    const auto ecu = names.ecu(kEcu, true);
    const auto old = names.inverter(kEcu, kOld, true);
    const auto kept = names.inverter(kEcu, kKept, true);
    SECTION("an inverter no longer known, one known again") {
        AnnouncedDevices announced{TopicScheme{}};
        announced.load({ecu, old}, {{kept.state_topic, kEcu, 4}});
        WriteBatch write;
        const auto due = announced.at_start({{kEcu, {kKept}}}, true, 9, write);
        std::map<std::string, std::uint64_t> cleared;
        for (const auto& c : due)
            cleared[c.topic] = c.readings_up_to;
        CHECK(cleared == std::map<std::string, std::uint64_t>{{old.config_topic, 9},
                                                              {old.state_topic, 9},
                                                              {old.availability_topic, 9}});
        CHECK(announced.devices() == 1);
    }
    SECTION("discovery turned off: the configs of known devices go, their states stay") {
        AnnouncedDevices announced{TopicScheme{}};
        announced.load({ecu, kept}, {});
        WriteBatch write;
        const auto due = announced.at_start({{kEcu, {kKept}}}, false, 3, write);
        REQUIRE(due.size() == 2);
        CHECK(due[0].topic == ecu.config_topic);
        CHECK(due[1].topic == kept.config_topic);
        CHECK(announced.devices() == 2);
        WriteBatch next; // recorded without a config now
        announced.announce(names.inverter(kEcu, kKept, false), next);
        CHECK(next.empty());
    }
}

} // namespace test_store_announced
