// Installation scale against a real Mosquitto: many ECUs and inverters, a broker that is away
// or restarts, and a subscriber that checks every device, state and reading.
#include "support/mqtt_probe.hpp"
#include "support/service_process.hpp"
#include "support/store_probe.hpp"
#include "support/test_paths.hpp"
#include "support/upload_builder.hpp"

#include <algorithm>
#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

using namespace std::chrono_literals;
using nlohmann::json;

namespace test_scale {
namespace {

constexpr int kQs1PerEcu = 25;

std::string ecu_id(int n) {
    return "2160000" + test::zero_padded(n, 5);
}
std::string inverter_uid(int ecu, int n) {
    return "806" + test::zero_padded(ecu, 4) + test::zero_padded(n, 5);
}

// Reading `k` (0-based) is stamped 5 k minutes after 08:00 UTC today: dated like a live
// installation's, so that no midnight passes between the readings and the service's clock.
std::time_t stamp_of(int k) {
    const std::time_t now = std::time(nullptr);
    return now - now % 86400 + 8 * 3600 + 300 * k;
}

std::string formatted(std::time_t t, const char* format) {
    std::tm parts{};
    ::gmtime_r(&t, &parts);
    char text[32];
    std::strftime(text, sizeof text, format, &parts);
    return text;
}

std::string iso_timestamp(int k) {
    return formatted(stamp_of(k), "%Y-%m-%dT%H:%M:%S");
}

// Reading `k` of an ECU with 25 QS1 stamped `t` (by default five minutes after reading k - 1),
// lifetime rising.
std::string installation_upload(int ecu, int k, std::time_t t = 0) {
    test::UploadSpec spec;
    spec.ecu_id = ecu_id(ecu);
    spec.timestamp = formatted(t ? t : stamp_of(k), "%Y%m%d%H%M%S");
    for (int i = 0; i < kQs1PerEcu; ++i)
        spec.inverters.push_back(test::inverter_with(inverter_uid(ecu, i), 4, 50 + (k % 50)));
    spec.centiwatts = kQs1PerEcu * 4 * (50 + (k % 50)) * 100LL;
    spec.decikwh = 100000 + k;
    return test::build_upload(spec);
}

struct Scratch {
    Scratch() : state_dir(test::make_temp_dir("ecu2mqtt-scale") / "state") {}
    ~Scratch() {
        std::error_code ec;
        std::filesystem::remove_all(state_dir.parent_path(), ec);
    }
    std::filesystem::path state_dir;
};

// The newest message per topic, ignoring the broker's own re-deliveries.
std::map<std::string, test::Received> newest_by_topic(const test::MqttProbe& probe) {
    std::map<std::string, test::Received> newest;
    for (const auto& m : probe.messages())
        if (!m.duplicate)
            newest[m.topic] = m;
    return newest;
}

// The ECU timestamps published on `<base>/<ecu>/state`, in arrival order, without the broker's
// own re-deliveries to this probe.
std::vector<std::string> state_timestamps(const test::MqttProbe& probe, const std::string& ecu) {
    std::vector<std::string> stamps;
    const std::string topic = "ecu2mqtt/" + ecu + "/state";
    for (const auto& m : probe.messages())
        if (m.topic == topic && !m.duplicate && !m.payload.empty())
            stamps.push_back(json::parse(m.payload).at("timestamp").get<std::string>());
    return stamps;
}

// Where two timestamp lists part: the first index that differs, what is missing and what is extra.
std::string difference(const std::vector<std::string>& got, const std::vector<std::string>& want) {
    std::size_t first = 0;
    while (first < got.size() && first < want.size() && got[first] == want[first])
        ++first;
    std::multiset<std::string> missing(want.begin(), want.end());
    std::vector<std::string> extra;
    for (const auto& stamp : got)
        if (const auto it = missing.find(stamp); it != missing.end())
            missing.erase(it);
        else
            extra.push_back(stamp);
    std::ostringstream out;
    out << "first difference at " << first << " of " << want.size() << "; missing:";
    for (const auto& stamp : missing)
        out << ' ' << stamp;
    out << "; extra:";
    for (const auto& stamp : extra)
        out << ' ' << stamp;
    return out.str();
}

void require_whole_installation(const test::MqttProbe& probe, int ecus, bool retained) {
    const auto newest = newest_by_topic(probe);
    for (int e = 0; e < ecus; ++e) {
        std::vector<std::string> devices{ecu_id(e)};
        for (int i = 0; i < kQs1PerEcu; ++i)
            devices.push_back(inverter_uid(e, i));
        for (const auto& device : devices) {
            INFO("device " << device);
            const auto config = newest.find("homeassistant/device/ecu2mqtt_" + device + "/config");
            REQUIRE(config != newest.end());
            CHECK(config->second.retained == retained);
            CHECK(json::parse(config->second.payload).at("cmps").size() >= 5);
            const std::string base =
                device == ecu_id(e) ? "ecu2mqtt/" + device : "ecu2mqtt/" + ecu_id(e) + "/" + device;
            const auto state = newest.find(base + "/state");
            REQUIRE(state != newest.end());
            CHECK(state->second.retained == retained);
            const auto availability = newest.find(base + "/availability");
            REQUIRE(availability != newest.end());
            CHECK(availability->second.payload == "online");
            CHECK(availability->second.retained == retained);
        }
    }
}

// Every topic of the installation: each device's config, state and availability. Named one by
// one, so that a wait for them cannot end on other topics of ours (the bridge's own).
std::set<std::string> installation_topics(int ecus) {
    std::set<std::string> topics;
    for (int e = 0; e < ecus; ++e) {
        std::vector<std::string> devices{ecu_id(e)};
        for (int i = 0; i < kQs1PerEcu; ++i)
            devices.push_back(inverter_uid(e, i));
        for (const auto& device : devices) {
            const std::string base =
                device == ecu_id(e) ? "ecu2mqtt/" + device : "ecu2mqtt/" + ecu_id(e) + "/" + device;
            topics.insert({"homeassistant/device/ecu2mqtt_" + device + "/config", base + "/state",
                           base + "/availability"});
        }
    }
    return topics;
}

} // namespace

TEST_CASE("3 ECUs with 25 QS1 each: every device discovered, every state and availability "
          "retained and online") {
    test::MosquittoBroker broker;
    Scratch scratch;
    test::MqttProbe probe(broker.url(), "#");
    test::ServiceProcess service(broker.url(), scratch.state_dir, {"--max-ecus", "3"});
    for (int e = 0; e < 3; ++e)
        REQUIRE(test::upload(service.port(), installation_upload(e, 0)).starts_with("101"));

    const auto all_there = [&](const test::MqttProbe& p) {
        const auto deadline = std::chrono::steady_clock::now() + 20s;
        auto missing = installation_topics(3);
        while (std::chrono::steady_clock::now() < deadline) {
            for (const auto& m : p.messages())
                missing.erase(m.topic);
            if (missing.empty())
                return true;
            std::this_thread::sleep_for(50ms);
        }
        INFO(missing.size() << " topics missing, e.g. " << *missing.begin());
        return false;
    };
    REQUIRE(all_there(probe));
    require_whole_installation(probe, 3, false);

    // What Home Assistant sees when it (re)starts: everything, retained.
    test::MqttProbe late(broker.url(), "#", "late");
    REQUIRE(all_there(late));
    require_whole_installation(late, 3, true);
    CHECK(service.log().find("ecu_limit_reached") == std::string::npos);

    SECTION("a fourth ECU beyond --max-ecus is answered, logged and not published") {
        REQUIRE(test::upload(service.port(), installation_upload(3, 0)).starts_with("101"));
        CHECK(service.process().wait_for_output("event=ecu_limit_reached ecu=" + ecu_id(3), 5s));
        std::this_thread::sleep_for(300ms);
        CHECK(probe.count([](const test::Received& m) {
            return m.topic.find(ecu_id(3)) != std::string::npos;
        }) == 0);
    }
}

TEST_CASE("readings of 25 QS1 taken without a broker are all delivered after a restart with one") {
    test::MosquittoBroker broker;
    broker.stop();
    Scratch scratch;
    {
        test::ServiceProcess offline(broker.url(), scratch.state_dir);
        for (int k = 0; k < 4; ++k)
            REQUIRE(test::upload(offline.port(), installation_upload(0, k)).starts_with("101"));
    } // stopped with SIGTERM: the readings stay in the spool

    broker.start();
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#");
    test::ServiceProcess service(broker.url(), scratch.state_dir);
    const auto last = iso_timestamp(3);
    REQUIRE(probe.wait_for_payload(
        "ecu2mqtt/" + ecu_id(0) + "/state",
        [&](const std::string& p) { return json::parse(p)["timestamp"] == last; }, 20s));
    const auto last_inverter = "ecu2mqtt/" + ecu_id(0) + "/" + inverter_uid(0, kQs1PerEcu - 1);
    REQUIRE(probe.wait_for_count(
        [&](const test::Received& m) { return m.topic == last_inverter + "/state"; }, 4, 10s));

    CHECK(state_timestamps(probe, ecu_id(0)) ==
          std::vector<std::string>{iso_timestamp(0), iso_timestamp(1), iso_timestamp(2),
                                   iso_timestamp(3)});
    for (int i = 0; i < kQs1PerEcu; ++i) {
        const auto topic = "ecu2mqtt/" + ecu_id(0) + "/" + inverter_uid(0, i) + "/state";
        CHECK(probe.count([&](const test::Received& m) { return m.topic == topic; }) == 4);
    }
    test::MqttProbe late(broker.url(), "ecu2mqtt/#", "late");
    const auto retained = late.wait_for_topic("ecu2mqtt/" + ecu_id(0) + "/state");
    REQUIRE(retained);
    CHECK(retained->retained);
    CHECK(json::parse(retained->payload)["timestamp"] == last);
    CHECK(service.log().find("mqtt_publish_failed") == std::string::npos);
}

TEST_CASE("a broker restarted every few seconds: every reading arrives once, in order per ECU") {
    test::MosquittoBroker broker({}, {}, /*persistent=*/true);
    Scratch scratch;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/+/state", "probe", "chaos-probe");
    test::ServiceProcess service(broker.url(), scratch.state_dir);

    constexpr int kEcus = 2;
    // The ECUs' clocks keep to the host's: one reading a second or so, each a second after the
    // last at least (the ledger would rightly distrust readings 5 minutes apart every 100 ms).
    std::map<int, std::vector<std::string>> sent; // ECU -> timestamps answered
    std::time_t last_stamp = std::time(nullptr) - 1;
    const auto start = std::chrono::steady_clock::now();
    auto next_restart = start + 3s;
    int restarts = 0;
    while (std::chrono::steady_clock::now() - start < 60s) {
        last_stamp = std::max(last_stamp + 1, std::time(nullptr));
        for (int e = 0; e < kEcus; ++e) {
            const int k = static_cast<int>(sent[e].size());
            REQUIRE(test::upload(service.port(), installation_upload(e, k, last_stamp))
                        .starts_with("101"));
            sent[e].push_back(formatted(last_stamp, "%Y-%m-%dT%H:%M:%S"));
        }
        if (std::chrono::steady_clock::now() >= next_restart) {
            broker.stop();
            std::this_thread::sleep_for(300ms);
            broker.start();
            ++restarts;
            next_restart = std::chrono::steady_clock::now() + 3s;
        }
        std::this_thread::sleep_for(100ms);
    }
    CHECK(restarts >= 15);

    for (int e = 0; e < kEcus; ++e) {
        INFO("ECU " << ecu_id(e) << ", " << sent[e].size() << " readings");
        const auto last = sent[e].back();
        REQUIRE(probe.wait_for_payload(
            "ecu2mqtt/" + ecu_id(e) + "/state",
            [&](const std::string& p) { return json::parse(p)["timestamp"] == last; }, 30s));
        const auto got = state_timestamps(probe, ecu_id(e));
        INFO(difference(got, sent[e]));
        CHECK(got == sent[e]);
    }
}

TEST_CASE("25 QS1 with one malformed block: the other 24 are published, the message kept raw") {
    test::MosquittoBroker broker;
    Scratch scratch;
    test::MqttProbe probe(broker.url(), "ecu2mqtt/#");
    test::ServiceProcess service(broker.url(), scratch.state_dir);
    std::string message = installation_upload(0, 0);
    constexpr std::size_t kHeader = 83, kQs1Block = 48 + 4 * 20, kFrequency = 22;
    message[kHeader + 7 * kQs1Block + kFrequency] = 'x'; // inverter 7's grid frequency
    REQUIRE(test::upload(service.port(), message).starts_with("101"));

    const auto ecu = probe.wait_for_topic("ecu2mqtt/" + ecu_id(0) + "/state");
    REQUIRE(ecu);
    REQUIRE(probe.wait_for_count(
        [](const test::Received& m) {
            return m.topic.ends_with("/state") && m.topic.find("/806") != std::string::npos;
        },
        kQs1PerEcu - 1, 10s));
    std::this_thread::sleep_for(200ms);
    for (int i = 0; i < kQs1PerEcu; ++i) {
        const auto topic = "ecu2mqtt/" + ecu_id(0) + "/" + inverter_uid(0, i) + "/state";
        INFO(topic);
        CHECK(probe.count([&](const test::Received& m) { return m.topic == topic; }) ==
              (i == 7 ? 0u : 1u));
    }
    CHECK(service.process().wait_for_output("event=inverter_block_left_out", 2s));
    CHECK(service.process().wait_for_output("event=raw_message_kept", 2s));
    std::vector<std::vector<std::string>> kept;
    for (int i = 0; i < 100 && kept.empty(); ++i) { // committed just after the answer
        kept = test::query_rows(scratch.state_dir, "SELECT ecu_id, why, line FROM raw_messages", 3);
        std::this_thread::sleep_for(20ms);
    }
    REQUIRE(kept.size() == 1);
    CHECK(kept[0][0] == ecu_id(0));
    CHECK_THAT(kept[0][1], Catch::Contains("1 inverter block(s) left out"));
    CHECK(json::parse(kept[0][2])["message"] == message); // the whole message, byte for byte
}

} // namespace test_scale
