-- Money is BIGINT cents; times are BIGINT milliseconds since the epoch (UTC).

-- A user and the user's account: the balance lives on the user row, so the
-- first login creates both with one atomic statement (the login upsert).
CREATE TABLE IF NOT EXISTS users (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  phone VARCHAR(16) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
  balance_cents BIGINT NOT NULL DEFAULT 0,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  last_login_at_ms BIGINT NOT NULL,
  login_count BIGINT UNSIGNED NOT NULL DEFAULT 1,
  UNIQUE KEY uk_users_phone (phone)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- The ledger: for every user, users.balance_cents = SUM(amount_cents).
-- kind: 1 = RECHARGE (idempotency_key set), 2 = RIDE_FARE (ride_id set).
CREATE TABLE IF NOT EXISTS account_records (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  kind TINYINT UNSIGNED NOT NULL,
  amount_cents BIGINT NOT NULL,
  balance_after_cents BIGINT NOT NULL,
  idempotency_key VARBINARY(64) NULL,
  ride_id BIGINT UNSIGNED NULL,
  created_at_ms BIGINT NOT NULL,
  UNIQUE KEY uk_records_idempotency (user_id, idempotency_key),
  UNIQUE KEY uk_records_ride (ride_id),
  KEY ix_records_user_id (user_id, id),
  CONSTRAINT fk_records_user FOREIGN KEY (user_id) REFERENCES users (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

CREATE TABLE IF NOT EXISTS bikes (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  status ENUM('available', 'in_use', 'out_of_service') NOT NULL DEFAULT 'available',
  lat DOUBLE NOT NULL,
  lng DOUBLE NOT NULL,
  created_at_ms BIGINT NOT NULL,
  updated_at_ms BIGINT NOT NULL,
  -- "available bikes in this box": equality on status, range on lat, lng filtered in the index.
  KEY ix_bikes_status_lat_lng (status, lat, lng)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;

-- active_user_id / active_bike_id are set only while the ride is active: the
-- unique keys make a second active ride per user or per bike impossible.
CREATE TABLE IF NOT EXISTS rides (
  id BIGINT UNSIGNED NOT NULL AUTO_INCREMENT PRIMARY KEY,
  user_id BIGINT UNSIGNED NOT NULL,
  bike_id BIGINT UNSIGNED NOT NULL,
  status ENUM('active', 'finished') NOT NULL,
  active_user_id BIGINT UNSIGNED NULL,
  active_bike_id BIGINT UNSIGNED NULL,
  started_at_ms BIGINT NOT NULL,
  ended_at_ms BIGINT NULL,
  start_lat DOUBLE NOT NULL,
  start_lng DOUBLE NOT NULL,
  end_lat DOUBLE NULL,
  end_lng DOUBLE NULL,
  duration_seconds INT UNSIGNED NULL,
  fare_cents BIGINT NULL,
  UNIQUE KEY uk_rides_active_user (active_user_id),
  UNIQUE KEY uk_rides_active_bike (active_bike_id),
  KEY ix_rides_user_id (user_id, id),
  CONSTRAINT fk_rides_user FOREIGN KEY (user_id) REFERENCES users (id),
  CONSTRAINT fk_rides_bike FOREIGN KEY (bike_id) REFERENCES bikes (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin;
