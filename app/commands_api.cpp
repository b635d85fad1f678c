// dialer accounts ..., dialer apikeys ...: who may call the HTTP API. An API key belongs to one account
// (--account, default "default"); it is printed once, at creation, and stored only as a hash.
#include "adapters/http/api_key.hpp"
#include "adapters/postgres/pg_api_store.hpp"
#include "app/commands.hpp"
#include "app/output.hpp"

namespace dialer::app {
namespace {

nlohmann::json key_json(const api_key_record& k) {
  return {{"id", k.id},
          {"name", k.name},
          {"prefix", k.prefix},
          {"created_at", iso8601(k.created_at)},
          {"revoked_at", k.revoked_at ? nlohmann::json(iso8601(*k.revoked_at)) : nlohmann::json()}};
}

// Accounts are listed and created before any account is chosen: the context's own account lookup is not
// wanted here, so these commands open the database with the default account.
template <class Body>
int with_store(const global_options& options, Body body) {
  auto c = context::open(options);
  if (!c) return report(c.error());
  pg::pg_api_store store(c->db());
  return body(store, *c);
}

}  // namespace

void add_api_commands(CLI::App& app, global_options& options, command_action& run) {
  auto* accounts = app.add_subcommand("accounts", "Accounts: each has its own numbers, agents, campaigns and API keys");
  accounts->require_subcommand(1);
  auto account_name = std::make_shared<std::string>();
  auto* create = accounts->add_subcommand("create", "Create an account");
  create->add_option("NAME", *account_name, "Account name (letters, digits, '.', '_', '-')")->required();
  create->callback([&options, &run, account_name] {
    run = [&options, account_name] {
      auto o = options;
      o.account = "default";
      return with_store(o, [&](pg::pg_api_store& store, context&) {
        auto a = store.create_account(*account_name);
        if (!a) return report(a.error());
        fmt::print("account '{}' created (id {})\n", a->name, a->id.value());
        return int{exit_ok};
      });
    };
  });
  accounts->add_subcommand("list", "List accounts")->callback([&options, &run] {
    run = [&options] {
      auto o = options;
      o.account = "default";
      return with_store(o, [&options](pg::pg_api_store& store, context&) {
        auto list = store.list_accounts();
        if (!list) return report(list.error());
        if (options.json) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& a : *list)
            out.push_back({{"id", a.id.value()}, {"name", a.name}, {"created_at", iso8601(a.created_at)}});
          print_json(out);
        } else {
          std::vector<std::vector<std::string>> rows;
          for (const auto& a : *list) rows.push_back({std::to_string(a.id.value()), a.name, iso8601(a.created_at)});
          print_table({"ID", "NAME", "CREATED"}, rows);
        }
        return int{exit_ok};
      });
    };
  });

  auto* keys = app.add_subcommand("apikeys", "API keys of the account (--account, default 'default')");
  keys->require_subcommand(1);
  auto key_name = std::make_shared<std::string>();
  auto* kcreate = keys->add_subcommand("create", "Create an API key; it is printed once and never again");
  kcreate->add_option("--name", *key_name, "What the key is for");
  kcreate->callback([&options, &run, key_name] {
    run = [&options, key_name] {
      return with_store(options, [&](pg::pg_api_store& store, context& c) {
        const auto key = http::new_api_key();
        auto k = store.add_key(c.account(), *key_name, http::api_key_prefix(key), http::sha256(key));
        if (!k) return report(k.error());
        if (options.json) {
          auto j = key_json(*k);
          j["key"] = key;
          print_json(j);
        } else {
          fmt::print("{}\n", key);
          fmt::print(stderr, "API key {} for account '{}': shown once, stored only as a hash\n", k->id,
                     options.account);
        }
        return int{exit_ok};
      });
    };
  });
  keys->add_subcommand("list", "List the account's API keys (prefixes only)")->callback([&options, &run] {
    run = [&options] {
      return with_store(options, [&options](pg::pg_api_store& store, context& c) {
        auto list = store.list_keys(c.account());
        if (!list) return report(list.error());
        if (options.json) {
          nlohmann::json out = nlohmann::json::array();
          for (const auto& k : *list) out.push_back(key_json(k));
          print_json(out);
        } else {
          std::vector<std::vector<std::string>> rows;
          for (const auto& k : *list)
            rows.push_back({std::to_string(k.id), k.prefix + "...", k.name, iso8601(k.created_at),
                            k.revoked_at ? "revoked " + iso8601(*k.revoked_at) : "active"});
          print_table({"ID", "PREFIX", "NAME", "CREATED", "STATE"}, rows);
        }
        return int{exit_ok};
      });
    };
  });
  auto revoke_id = std::make_shared<std::int64_t>(0);
  auto* krevoke = keys->add_subcommand("revoke", "Revoke an API key: requests with it are refused (401) at once");
  krevoke->add_option("ID", *revoke_id, "Key id (from 'dialer apikeys list')")->required();
  krevoke->callback([&options, &run, revoke_id] {
    run = [&options, revoke_id] {
      return with_store(options, [&](pg::pg_api_store& store, context& c) {
        auto k = store.revoke_key(c.account(), *revoke_id);
        if (!k) return report(k.error());
        if (options.json)
          print_json(key_json(*k));
        else
          fmt::print("API key {} ({}...) is revoked\n", k->id, k->prefix);
        return int{exit_ok};
      });
    };
  });
}

}  // namespace dialer::app
