-- migrate:up
CREATE TYPE status AS ENUM ('new', 'active', 'gone');

-- migrate:down
DROP TYPE status;
