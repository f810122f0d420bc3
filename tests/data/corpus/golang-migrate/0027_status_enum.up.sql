CREATE TYPE status AS ENUM ('new', 'active', 'gone');
