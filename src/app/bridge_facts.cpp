#include "ecu2mqtt/app/bridge_facts.hpp"

namespace ecu2mqtt {

std::string url_without_credentials(std::string_view url) {
    const auto scheme_end = url.find("://");
    const auto start = scheme_end == std::string_view::npos ? 0 : scheme_end + 3;
    const auto at = url.rfind('@');
    if (at == std::string_view::npos || at < start)
        return std::string(url);
    return std::string(url.substr(0, start)) + std::string(url.substr(at + 1));
}

nlohmann::json bridge_facts(const Options& o, std::string_view version,
                            std::optional<std::uint16_t> http_port) {
    using nlohmann::json;
    const std::string http_listen =
        o.http_address.find(':') != std::string::npos
            ? "[" + o.http_address + "]:" + std::to_string(http_port.value_or(o.http_port))
            : o.http_address + ":" + std::to_string(http_port.value_or(o.http_port));
    // Listed one by one: an option added later stays out until someone decides it is no secret.
    json options{{"listen", o.listen_address},
                 {"ports", o.ports},
                 {"max_message_bytes", o.max_message_bytes},
                 {"idle_timeout", o.idle_timeout.count()},
                 {"max_connections", o.max_connections},
                 {"max_connection_age", o.max_connection_age.count()},
                 {"allow_peers", o.allow_peers},
                 {"allow_ecus", o.allow_ecus},
                 {"log_level", log_level_name(o.log_level)},
                 {"log_file", o.log_file},
                 {"mqtt_url", url_without_credentials(o.mqtt_url)},
                 {"mqtt_client_id", o.mqtt_client_id},
                 {"mqtt_ca_file", o.mqtt_ca_file},
                 {"base_topic", o.base_topic},
                 {"discovery_prefix", o.discovery_prefix},
                 {"discovery", o.discovery},
                 {"publish_raw", o.publish_raw},
                 {"ecu_timeout", o.ecu_timeout.count()},
                 {"state_dir", o.state_dir},
                 {"backfill", o.backfill},
                 {"spool_max_mb", o.spool_max_mb},
                 {"history_days", o.history_days},
                 {"max_ecus", o.max_ecus},
                 {"max_inverters_per_ecu", o.max_inverters_per_ecu},
                 {"forget_inverters_after", o.forget_inverters_after.count()},
                 {"gap_expiry", o.gap_expiry.count()},
                 {"forward_to_ema", url_without_credentials(o.forward_to_ema)},
                 {"ema_resolver", o.ema_resolver},
                 {"ema_timeout", static_cast<double>(o.ema_timeout.count()) / 1000.0},
                 {"block_firmware", o.block_firmware},
                 {"record", o.record_dir},
                 {"record_max_mb", o.record_max_mb},
                 {"http", o.http},
                 {"http_listen", http_listen},
                 {"http_allow_peers", o.http_allow_peers},
                 {"http_timeout", o.http_timeout.count()},
                 {"dns_check_name", o.dns_check_name},
                 {"advertised_address", o.advertised_addresses}};
    return {{"version", version},
            {"listen", {{"address", o.listen_address}, {"ports", o.ports}}},
            {"http", o.http ? json(http_listen) : json(nullptr)},
            {"broker", url_without_credentials(o.mqtt_url)},
            {"options", options}};
}

} // namespace ecu2mqtt
