// The publisher in-process with a clock the test moves, against a real Mosquitto.
#include "ecu2mqtt/app/upload_pipeline.hpp"
#include "ecu2mqtt/mqtt/mqtt_publisher.hpp"
#include "ecu2mqtt/protocol/decoder.hpp"
#include "ecu2mqtt/store/store.hpp"
#include "support/fixed_clock.hpp"
#include "support/mosquitto_broker.hpp"
#include "support/mqtt_probe.hpp"
#include "support/upload_builder.hpp"

#include "ecu2mqtt/net/asio.hpp"
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

using namespace ecu2mqtt;
using namespace std::chrono_literals;

TEST_CASE(
    "at the ECU's midnight today's energy goes to 0 once, and the next upload counts from there") {
    test::MosquittoBroker broker;
    const auto dir = test::make_temp_dir("ecu2mqtt-clock");
    test::MqttProbe probe(broker.url(), "ecu2mqtt/216000064136/state");
    test::FixedClock clock({2024, 2, 6, 23, 50, 0});
    std::stringstream log_text;
    Logger log(log_text, LogLevel::Debug);
    boost::asio::io_context io;
    PublisherConfig config;
    config.url = broker.url();
    config.sw_version = "test";
    PipelineConfig pipeline_config;
    pipeline_config.ecu_timeout = 1s; // the periodic check runs every 250 ms then
    Store store(Store::file_in(dir / "state"), {}, io.get_executor());
    MqttPublisher publisher(io, config, log, &store);
    UploadPipeline pipeline(io, pipeline_config, publisher, clock, log, &store);
    pipeline.start();
    auto work = boost::asio::make_work_guard(io);
    std::thread runner([&] { io.run(); });

    const auto publish = [&](const char* stamp, long long decikwh) {
        test::UploadSpec spec;
        spec.timestamp = stamp;
        spec.decikwh = decikwh;
        const auto bytes = test::build_upload(spec);
        const auto upload = std::get<RealtimeUpload>(*decoded_message(decode_message(bytes)));
        boost::asio::post(io, [&pipeline, upload, &clock] {
            pipeline.on_realtime(upload, clock.now(), [](UploadHandling) {});
        });
    };
    const auto today_energy = [&](double expected) {
        return probe.wait_for_payload("ecu2mqtt/216000064136/state", [&](const std::string& p) {
            return nlohmann::json::parse(p)["today_energy_kwh"] == expected;
        });
    };

    std::this_thread::sleep_for(300ms); // connected
    publish("20240206234500", 30000);
    publish("20240206235000", 30012);
    CHECK(today_energy(1.2));
    probe.clear();

    // The ECU's clock runs up to five minutes behind this host's (its uploads say so): its
    // midnight comes a little after the host's.
    clock.set({2024, 2, 7, 0, 6, 0});
    CHECK(today_energy(0.0));
    std::this_thread::sleep_for(600ms); // a few more ticks: no second reset message
    CHECK(probe.messages().size() == 1);

    probe.clear();
    publish("20240206235500", 30013); // late upload from yesterday: today stays 0
    CHECK(today_energy(0.0));
    clock.set({2024, 2, 7, 8, 0, 5});
    publish("20240207080000", 30020);
    // Yesterday ended at 3001.3 (the late upload is yesterday's energy), so today is 0.7.
    CHECK(today_energy(0.7));
    CHECK_FALSE(probe.wait_for_payload(
        "ecu2mqtt/216000064136/state",
        [](const std::string& p) { return nlohmann::json::parse(p)["today_energy_kwh"] > 0.7; },
        100ms));

    boost::asio::post(io, [&] { pipeline.shutdown(300ms); });
    work.reset();
    runner.join();
    std::filesystem::remove_all(dir);
}
