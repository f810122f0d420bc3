DROP TABLE question_tags;
DROP TABLE tags;
