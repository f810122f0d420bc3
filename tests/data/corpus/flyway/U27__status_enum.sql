DROP TYPE status;
