#include "ecu2mqtt/app/addon.hpp"
#include "ecu2mqtt/app/options.hpp"

#include <catch2/catch.hpp>

using namespace ecu2mqtt;
using nlohmann::json;

namespace test_addon {
namespace {
// The defaults of ha-addon/config.yaml.
const json kDefaults = json::parse(R"({"log_level": "info", "backfill": true, "ecu_timeout": 900,
    "publish_raw": false, "discovery": true, "allow_peers": [], "allow_ecus": [], "block_firmware": true})");
const SupervisorMqtt kMosquittoAddon{"core-mosquitto", "1883", false, "addons", "s3cret"};
} // namespace

TEST_CASE("the Supervisor's MQTT answer is read, with the port as a string") {
    const auto mqtt = parse_supervisor_mqtt(R"({"result": "ok", "data": {"addon": "core_mosquitto",
        "host": "core-mosquitto", "port": "1883", "ssl": false, "protocol": "3.1.1",
        "username": "addons", "password": "s3cret"}})");
    CHECK(mqtt.host == "core-mosquitto");
    CHECK(mqtt.port == "1883");
    CHECK(mqtt.username == "addons");
    CHECK(mqtt.password == "s3cret");
    CHECK_FALSE(mqtt.ssl);
    CHECK_THROWS_WITH(parse_supervisor_mqtt(R"({"result": "error", "message": "No mqtt service"})"),
                      Catch::Contains("No mqtt service"));
    CHECK_THROWS_AS(parse_supervisor_mqtt("<html>"), AddonError);
}

TEST_CASE("add-on defaults plus the Supervisor's broker become valid options") {
    const auto args = addon_arguments(kDefaults, kMosquittoAddon, "/data");
    const auto o = parse_command_line(args, {}).options;
    CHECK(o.mqtt_url == "mqtt://core-mosquitto:1883");
    CHECK(o.mqtt_user == "addons");
    CHECK(o.mqtt_password == "s3cret");
    CHECK(o.state_dir == "/data");
    CHECK(o.backfill);
    CHECK(o.discovery);
    CHECK_FALSE(o.publish_raw);
    CHECK(o.ecu_timeout == std::chrono::seconds(900));
    CHECK(o.allow_peers.empty());
    CHECK(o.forward_to_ema.empty());
    CHECK(o.block_firmware);
}

TEST_CASE("every add-on option reaches the service") {
    json options = kDefaults;
    options["log_level"] = "debug";
    options["backfill"] = false;
    options["ecu_timeout"] = 600;
    options["publish_raw"] = true;
    options["discovery"] = false;
    options["allow_peers"] = {"192.168.1.0/24", "10.0.0.7"};
    options["allow_ecus"] = {"216000064136"};
    options["forward_to_ema"] = "ecu.apsystemsema.com";
    options["ema_resolver"] = "1.1.1.1";
    options["block_firmware"] = false;
    options["pvoutput_api_key"] = "k";
    options["pvoutput_systems"] = "216000064136=12345";
    const auto o =
        parse_command_line(addon_arguments(options, kMosquittoAddon, "/data"), {}).options;
    CHECK(o.forward_to_ema == "ecu.apsystemsema.com");
    CHECK(o.ema_resolver == "1.1.1.1");
    CHECK_FALSE(o.block_firmware);
    CHECK(o.log_level == LogLevel::Debug);
    CHECK_FALSE(o.backfill);
    CHECK(o.ecu_timeout == std::chrono::seconds(600));
    CHECK(o.publish_raw);
    CHECK_FALSE(o.discovery);
    CHECK(o.allow_peers == std::vector<std::string>{"192.168.1.0/24", "10.0.0.7"});
    CHECK(o.allow_ecus == std::vector<std::string>{"216000064136"});
    CHECK(o.advertised_addresses.empty());
    CHECK(o.pvoutput_systems == std::map<std::string, std::string>{{"216000064136", "12345"}});

    options["advertised_address"] = {"192.168.1.10"};
    CHECK(addon_names_advertised_address(options));
    CHECK(parse_command_line(addon_arguments(options, kMosquittoAddon, "/data"), {})
              .options.advertised_addresses == std::vector<std::string>{"192.168.1.10"});
}

TEST_CASE("the Supervisor's network answer gives the host's addresses") {
    // As /network/info answers on a host with Ethernet and WLAN (trimmed to what is read).
    const auto addresses = parse_supervisor_network(R"({"result": "ok", "data": {
        "interfaces": [
          {"interface": "enp1s0", "type": "ethernet", "connected": true,
           "ipv4": {"method": "auto", "address": ["192.168.1.10/24"], "gateway": "192.168.1.1"},
           "ipv6": {"method": "auto", "address": ["fe80::1c2d:3e4f:5a6b:7c8d/64",
                                                  "FE80::1/64", "2001:db8::1%wlan0/64",
                                                  "FD00:0:0:0:0:0:0:10/64"]}},
          {"interface": "wlan0", "type": "wireless", "connected": true,
           "ipv4": {"method": "auto", "address": ["192.168.1.11/24", "192.168.1.10/24"]},
           "ipv6": null},
          {"interface": "eth1", "type": "ethernet", "connected": false,
           "ipv4": {"method": "disabled", "address": []}}
        ],
        "docker": {"interface": "hassio", "address": "172.30.32.0/23"}}})");
    CHECK(addresses == std::vector<std::string>{"192.168.1.10", "fd00::10", "192.168.1.11"});
    CHECK_THROWS_WITH(parse_supervisor_network(R"({"result": "error", "message": "forbidden"})"),
                      Catch::Contains("forbidden"));
    CHECK_THROWS_AS(parse_supervisor_network(R"({"result": "ok", "data": {}})"), AddonError);
    CHECK_THROWS_AS(parse_supervisor_network("<html>"), AddonError);
}

TEST_CASE("a broker named in the options wins over the Supervisor's") {
    json options = kDefaults;
    options["mqtt_url"] = "mqtts://broker.lan:8883";
    options["mqtt_user"] = "solar";
    options["mqtt_password"] = "pw";
    CHECK(addon_names_broker(options));
    const auto o = parse_command_line(addon_arguments(options, std::nullopt, "/data"), {}).options;
    CHECK(o.mqtt_url == "mqtts://broker.lan:8883");
    CHECK(o.mqtt_user == "solar");
    CHECK(o.mqtt_password == "pw");
    CHECK_FALSE(addon_names_broker(kDefaults));
}

TEST_CASE("unknown or mistyped add-on options are refused by name") {
    json unknown = kDefaults;
    unknown["forward"] = true;
    CHECK_THROWS_WITH(addon_arguments(unknown, kMosquittoAddon, "/data"),
                      Catch::Contains("\"forward\""));
    json mistyped = kDefaults;
    mistyped["backfill"] = "yes";
    CHECK_THROWS_WITH(addon_arguments(mistyped, kMosquittoAddon, "/data"),
                      Catch::Contains("backfill"));
}

} // namespace test_addon
