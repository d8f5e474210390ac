//! Every validation error names the file, line and column, and says what to
//! do. Each row: the files of a project, then the text the error must contain.

mod common;
use common::Project;

const MODEL: &str = "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n";
const OK_PIPELINE: &str = "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n\n[targets.movies-db]\nkind = \"movies-db\"\n";

struct Case {
    name: &'static str,
    files: &'static [(&'static str, &'static str)],
    expect: &'static [&'static str],
}

const CASES: &[Case] = &[
    Case {
        name: "toml syntax error",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:"],
    },
    Case {
        name: "unknown key in pipeline.toml",
        files: &[("pipeline.toml", "[settings]\njobz = 2\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:1", "unknown field `jobz`", "remove the key or fix its spelling"],
    },
    Case {
        name: "unknown key in a target",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n[targets.x]\nkind = \"movie-json\"\npaht = \"a/{movieId}.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:1", "unknown field `paht`"],
    },
    Case {
        name: "unknown key in a model file",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\ndimension = 3\n")],
        expect: &["models.d/potion.toml:4:1", "unknown field `dimension`"],
    },
    Case {
        name: "missing key in a model file",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\n")],
        expect: &["models.d/potion.toml:1:1", "missing field `dimensions`"],
    },
    Case {
        name: "duplicate model id",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/a.toml", MODEL), ("models.d/b.toml", "name = \"Other\"\ndimensions = 8\nid = \"potion\"\n")],
        expect: &["models.d/b.toml:3:6", "duplicate model id `potion`", "`models.d/a.toml` already declares this id"],
    },
    Case {
        name: "dimensions zero",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 0\n")],
        expect: &["models.d/potion.toml:3:14", "dimensions must be between 1 and 8192, not 0"],
    },
    Case {
        name: "dimensions absurd",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 10000000\n")],
        expect: &["models.d/potion.toml:3:14", "not 10000000"],
    },
    Case {
        name: "a quantized default model",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/a.toml", "id = \"a\"\nname = \"A\"\ndimensions = 8\nquantization = \"bit\"\ndefault = true\n"), ("models.d/b.toml", "id = \"b\"\nname = \"B\"\ndimensions = 8\n")],
        expect: &["models.d/a.toml:5:11", "model `a` is quantized (bit), so it cannot be the default", "set `default = true` in a model file without `quantization`"],
    },
    Case {
        name: "only quantized models",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/a.toml", "id = \"a\"\nname = \"A\"\ndimensions = 8\nquantization = \"int8\"\n")],
        expect: &["models.d/a.toml", "every model in models.d is quantized, so none can be the default"],
    },
    Case {
        name: "two defaults",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/a.toml", "id = \"a\"\nname = \"A\"\ndimensions = 4\ndefault = true\n"), ("models.d/b.toml", "id = \"b\"\nname = \"B\"\ndimensions = 4\ndefault = true\n")],
        expect: &["models.d/b.toml:4:11", "marked default, but so is another model", "models.d/a.toml, models.d/b.toml"],
    },
    Case {
        name: "unknown quantization",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\nquantization = \"int4\"\n")],
        expect: &["models.d/potion.toml:4:16", "unknown quantization `int4`", "use int8 or bit"],
    },
    Case {
        name: "rescore without quantization",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\nrescore = true\n")],
        expect: &["models.d/potion.toml:4:11", "`rescore` without `quantization`", "add quantization"],
    },
    Case {
        name: "oversample without rescore",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\nquantization = \"int8\"\noversample = 4\n")],
        expect: &["models.d/potion.toml:5:14", "`oversample` without `rescore = true`"],
    },
    Case {
        name: "oversample out of range",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\nquantization = \"int8\"\nrescore = true\noversample = 0\n")],
        expect: &["models.d/potion.toml:6:14", "oversample must be between 1 and 256, not 0"],
    },
    Case {
        name: "cosine with bit quantization",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 64\nmetric = \"cosine\"\nquantization = \"bit\"\n")],
        expect: &["models.d/potion.toml:4:10", "metric `cosine` does not apply to quantization = \"bit\"", "hamming"],
    },
    Case {
        name: "bit quantization with dimensions not divisible by 8",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 60\nquantization = \"bit\"\n")],
        expect: &["models.d/potion.toml:3:14", "needs dimensions divisible by 8, not 60"],
    },
    Case {
        name: "unknown metric",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 4\nmetric = \"dot\"\n")],
        expect: &["models.d/potion.toml:4:10", "unknown metric `dot`", "l2 (the default), cosine, l1"],
    },
    Case {
        name: "unknown input referenced",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n\n[targets.j]\nkind = \"movie-json\"\nmovies = \"movie\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:10", "unknown input `movie`", "did you mean `movies`?"],
    },
    Case {
        name: "unknown input in a command",
        files: &[("pipeline.toml", "[inputs]\nsrc = \"a.txt\"\n[targets.c]\nkind = \"command\"\ncommand = \"cp a.txt {out}\"\ninputs = [\"srx\"]\nouts = [\"b.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:11", "unknown input `srx`"],
    },
    Case {
        name: "output paths that collide",
        files: &[("pipeline.toml", "[inputs]\nsrc = \"a.txt\"\n[targets.one]\nkind = \"command\"\ncommand = \"cp a.txt {out}\"\nouts = [\"out.txt\"]\n[targets.two]\nkind = \"command\"\ncommand = \"cp a.txt {out}\"\nouts = [\"out.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:8:8", "`two` writes out.txt, which `one` also writes"],
    },
    Case {
        name: "per-model outputs without {model} collide",
        files: &[("pipeline.toml", "[inputs]\nsrc = \"a.txt\"\n[targets.emb]\nkind = \"command\"\nper-model = true\ncommand = \"cp a.txt {out}\"\nouts = [\"emb.db\"]\n"), ("models.d/potion.toml", MODEL), ("models.d/other.toml", "id = \"other\"\nname = \"O\"\ndimensions = 3\n")],
        expect: &["pipeline.toml:4:8", "`emb@potion` writes emb.db, which `emb@other` also writes", "need `{model}`"],
    },
    Case {
        name: "a cycle",
        files: &[("pipeline.toml", "[targets.a]\nkind = \"command\"\ncommand = \"cp b.txt {out}\"\ndeps = [\"b.txt\"]\nouts = [\"a.txt\"]\n\n[targets.b]\nkind = \"command\"\ncommand = \"cp a.txt {out}\"\ndeps = [\"a.txt\"]\nouts = [\"b.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:", "dependency cycle: ", "a -> b", "break the cycle"],
    },
    Case {
        name: "a path that escapes the project root",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"../outside/movies.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:10", "escapes the project root"],
    },
    Case {
        name: "an absolute output path",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n[targets.j]\nkind = \"movie-json\"\npath = \"/tmp/{movieId}.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:8", "is absolute"],
    },
    Case {
        name: "an embeddings path that escapes the root",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 4\nembeddings = \"../../x.db\"\n")],
        expect: &["models.d/potion.toml:4:14", "escapes the project root"],
    },
    Case {
        name: "unknown target kind",
        files: &[("pipeline.toml", "[targets.x]\nkind = \"movie-jsn\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:8", "unknown target kind `movie-jsn`", "movie-json, movies-db, records-db, embeddings, command"],
    },
    Case {
        name: "option of another kind",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n[targets.x]\nkind = \"movie-json\"\ncommand = \"true\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:11", "`command` is not an option of a movie-json target"],
    },
    Case {
        name: "movies-db path without {model}",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n[targets.db]\nkind = \"movies-db\"\npath = \"public/movies.db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:8", "needs `{model}`"],
    },
    Case {
        name: "command writing its output directly",
        files: &[("pipeline.toml", "[targets.c]\nkind = \"command\"\ncommand = \"echo hi > out.txt\"\nouts = [\"out.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:3:11", "must write its outputs through `{out}`"],
    },
    Case {
        name: "model placeholder in a target that is not per-model",
        files: &[("pipeline.toml", "[targets.c]\nkind = \"command\"\ncommand = \"echo {model} > {out}\"\nouts = [\"out.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:3:11", "unknown placeholder `{model}`", "per-model = true"],
    },
    Case {
        name: "an output over pipe's own files",
        files: &[("pipeline.toml", "[targets.c]\nkind = \"command\"\ncommand = \"echo > {out}\"\nouts = [\"pipe.lock\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:8", "one of pipe's own files"],
    },
    Case {
        name: "no pipeline.toml",
        files: &[],
        expect: &["could not find pipeline.toml", "--manifest"],
    },
    Case {
        name: "unknown embedding provider",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"olama\"\n")],
        expect: &["models.d/potion.toml:6:12", "unknown embedding provider `olama`", "ollama, openai, rest, command, model2vec"],
    },
    Case {
        name: "unknown key in [embed]",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodle = \"x\"\n")],
        expect: &["models.d/potion.toml:7:1", "unknown field `modle`"],
    },
    Case {
        name: "ollama without model",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\n")],
        expect: &["models.d/potion.toml:6:12", "a ollama provider needs `model`", "nomic-embed-text"],
    },
    Case {
        name: "model2vec without path",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"model2vec\"\n")],
        expect: &["models.d/potion.toml:6:12", "a model2vec provider needs `path`", "never downloads"],
    },
    Case {
        name: "command without command",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"command\"\n")],
        expect: &["models.d/potion.toml:6:12", "a command provider needs `command`"],
    },
    Case {
        name: "batch zero",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\nbatch = 0\n")],
        expect: &["models.d/potion.toml:8:9", "batch must be between 1 and 100000, not 0"],
    },
    Case {
        name: "attempts zero",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\nattempts = 0\n")],
        expect: &["models.d/potion.toml:8:12", "attempts must be between 1 and 100, not 0"],
    },
    Case {
        name: "negative retry delay",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"openai\"\nmodel = \"m\"\nretry-delay = -0.5\nretry-max-delay = 7200\n")],
        expect: &["models.d/potion.toml:8:15", "retry-delay must be between 0 and 3600 seconds, not -0.5", "models.d/potion.toml:9:19", "retry-max-delay must be between 0 and 3600 seconds, not 7200"],
    },
    Case {
        name: "path for a provider that takes none",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\npath = \"models/x\"\n")],
        expect: &["models.d/potion.toml:8:8", "`path` is not an option of the ollama provider"],
    },
    Case {
        name: "template syntax error",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\ntemplate = \"\"\"\n# {{ title }}\n{% if year %}({{ year }}{% endfor %}\n\"\"\"\n")],
        expect: &["models.d/potion.toml:10:", "invalid text template", "minijinja"],
    },
    Case {
        name: "template with an unknown filter",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\ntemplate = \"{{ title | shout }}\"\n")],
        expect: &["models.d/potion.toml:8:", "unknown filter"],
    },
    Case {
        name: "query-prefix that is not a string",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"m\"\nquery-prefix = 1\n")],
        expect: &["models.d/potion.toml:8:16", "invalid type: integer `1`, expected a string"],
    },
    Case {
        name: "query-prefix that is a document prefix",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\n\n[embed]\nprovider = \"ollama\"\nmodel = \"nomic-embed-text\"\nprefix = \"search_document: \"\nquery-prefix = \"search_document: \"\n")],
        expect: &["models.d/potion.toml:9:16", "query-prefix `search_document: ` is a document prefix", "set query-prefix = \"search_query: \""],
    },
    Case {
        name: "embeddings target with per-model = false",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\n[targets.e]\nkind = \"embeddings\"\nper-model = false\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:5:13", "a embeddings target is always per-model"],
    },
    Case {
        name: "embeddings target with a path",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\n[targets.e]\nkind = \"embeddings\"\npath = \"x.db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:5:8", "`path` is not an option of a embeddings target", "takes: movies"],
    },
    Case {
        name: "empty ollama-model",
        files: &[("pipeline.toml", OK_PIPELINE), ("models.d/potion.toml", "id = \"potion\"\nname = \"Potion\"\ndimensions = 64\nollama-model = \"\"\n")],
        expect: &["models.d/potion.toml:4:16", "`ollama-model` is empty"],
    },
    Case {
        name: "an output declared over the target's own input",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"data/m.json\"\ncollections = \"c.json\"\n[targets.j]\nkind = \"movie-json\"\npath = \"data/{movieId}.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:5:8", "`j` reads data/m.json, which is in its output directory data: an output is declared over one of its inputs", "give the output another path"],
    },
    Case {
        name: "a command writing the file it reads",
        files: &[("pipeline.toml", "[targets.c]\nkind = \"command\"\ncommand = \"sort a.txt > {out}\"\ndeps = [\"a.txt\"]\nouts = [\"a.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:8", "`c` reads a.txt, which is its output a.txt"],
    },
    Case {
        name: "records-db naming an unknown input",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"flims\"\nid = \"sku\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:5:11", "unknown input `flims`", "did you mean `films`?"],
    },
];

/// Problems that must be reported once, without errors that only follow
/// from them: each of these projects has exactly one problem.
const SINGLE: &[Case] = &[
    Case {
        name: "an input path that escapes the root, used by two targets",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"../m.json\"\ncollections = \"c.json\"\n[targets.movie-json]\nkind = \"movie-json\"\n[targets.movies-db]\nkind = \"movies-db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:10", "escapes the project root"],
    },
    Case {
        name: "an absolute input path named by a command",
        files: &[("pipeline.toml", "[inputs]\nlist = \"/etc/hosts\"\n[targets.c]\nkind = \"command\"\ncommand = \"cat /etc/hosts > {out}\"\ninputs = [\"list\"]\nouts = [\"o.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:8", "is absolute"],
    },
    Case {
        name: "an output over the target's own input is not a cycle",
        files: &[("pipeline.toml", "[targets.c]\nkind = \"command\"\ncommand = \"sort a.txt > {out}\"\ndeps = [\"a.txt\"]\nouts = [\"a.txt\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["declared over one of its inputs"],
    },
    // Records (issue 11): [inputs] with a format, and records-db targets.
    Case {
        name: "records-db without records",
        files: &[("pipeline.toml", "[targets.f]\nkind = \"records-db\"\nid = \"sku\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:8", "a records-db target needs `records`", "records = \"films\""],
    },
    Case {
        name: "records-db without id",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:4:8", "a records-db target needs `id`", "id = \"row-{{ _n }}\""],
    },
    Case {
        name: "an id template that does not compile",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"{{ sku \"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:6", "invalid id template: syntax error"],
    },
    Case {
        name: "an unknown records format",
        files: &[("pipeline.toml", "[inputs]\nfilms = { path = \"f.txt\", format = \"yaml\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:36", "unknown records format `yaml`", "use json, jsonl or csv"],
    },
    Case {
        name: "an unknown key in an input table",
        files: &[("pipeline.toml", "[inputs]\nfilms = { path = \"f.csv\", fromat = \"csv\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:", "unknown field `fromat`"],
    },
    Case {
        name: "a records input whose format the extension does not tell",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.txt\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:2:9", "cannot tell the format of records input `films` from its extension", "films = { path = \"f.txt\", format = \"jsonl\" }"],
    },
    Case {
        name: "an unknown column type",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ncolumns = { Title = \"string\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:21", "unknown column type `string`", "use text, integer or real; add `?`"],
    },
    Case {
        name: "a column named id",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ncolumns = { ID = \"text\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:13", "`ID` cannot be a declared column", "its own `id` column"],
    },
    Case {
        name: "two columns SQLite sees as one",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ncolumns = { title = \"text\", Title = \"text\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:29", "column `Title` is declared twice"],
    },
    Case {
        name: "fts naming an undeclared column",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ncolumns = { Title = \"text\" }\nfts = [\"Titel\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:8:8", "`Titel` in fts is not a declared column", "did you mean `Title`?"],
    },
    Case {
        name: "fts over a number column",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ncolumns = { Year = \"integer\" }\nfts = [\"Year\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:8:8", "column `Year` is integer, so it cannot be full-text indexed"],
    },
    Case {
        name: "an unknown layout",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\nlayout = \"one\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:10", "unknown layout `one`", "per-model", "single"],
    },
    Case {
        name: "a per-model records path without {model}",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\npath = \"public/f.db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:8", "the path of a per-model records-db target needs `{model}`", "layout = \"single\""],
    },
    Case {
        name: "a single-layout path with {model}",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\nlayout = \"single\"\npath = \"public/{model}/f.db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:8:8", "the path of a single-layout records-db target cannot have `{model}`"],
    },
    Case {
        name: "an embeddings path without {model}",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\nembeddings = \"data/e.db\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:14", "the embeddings path of a records-db target needs `{model}`"],
    },
    Case {
        name: "a json path without {id}",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\njson = \"public/{id}/f.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:8", "needs `{id}` once, in its file name", "json = \"public/films/{id}.json\""],
    },
    Case {
        name: "an unknown placeholder in a json path",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\njson = \"public/{model}/{id}.json\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:8", "unknown placeholder `{model}`"],
    },
    Case {
        name: "a text template that does not compile",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ntext = \"{{ Title | nosuch }}\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:", "invalid text template: unknown filter"],
    },
    Case {
        name: "a text template for a model the target does not use",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\ntext = { default = \"{{ Title }}\", potoin = \"{{ Plot }}\" }\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:44", "unknown model `potoin` in a text template", "did you mean `potion`?"],
    },
    Case {
        name: "models naming an unknown model",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\nmodels = [\"potoin\"]\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:11", "unknown model `potoin` in `models`", "did you mean `potion`?"],
    },
    Case {
        name: "a model with [embed] and no text for the records",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\n"), ("models.d/potion.toml", "id = \"potion\"\nname = \"P\"\ndimensions = 8\n[embed]\nprovider = \"model2vec\"\npath = \"m\"\n")],
        expect: &["pipeline.toml:4:8", "records-db target `f` has no text template for model `potion`", "add text = \"{{ Title }}: {{ Plot }}\""],
    },
    Case {
        name: "per-model on a records-db target",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\nper-model = true\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:7:13", "`per-model` is not an option of a records-db target", "layout"],
    },
    Case {
        name: "a records option on another kind",
        files: &[("pipeline.toml", "[inputs]\nmovies = \"m.json\"\ncollections = \"c.json\"\n[targets.x]\nkind = \"movie-json\"\nlayout = \"single\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["pipeline.toml:6:10", "`layout` is not an option of a movie-json target"],
    },
    Case {
        name: "an expanded name another table takes",
        files: &[("pipeline.toml", "[inputs]\nfilms = \"f.jsonl\"\n[targets.f]\nkind = \"records-db\"\nrecords = \"films\"\nid = \"sku\"\njson = \"public/f/{id}.json\"\n[targets.f-json]\nkind = \"command\"\ncommand = \"true\"\n"), ("models.d/potion.toml", MODEL)],
        expect: &["two targets are named `f-json`", "rename one of the tables"],
    },
];

#[test]
fn a_problem_is_reported_once_without_follow_on_errors() {
    let mut failures = Vec::new();
    for case in SINGLE {
        let p = Project::new();
        for (path, text) in case.files {
            p.write(path, text);
        }
        let run = p.pipe(&["build"]);
        if run.code != 2 {
            failures.push(format!("{}: exit {}\n{}", case.name, run.code, run.stderr));
        }
        for want in case.expect {
            if !run.stderr.contains(want) {
                failures.push(format!(
                    "{}: stderr lacks {want:?}:\n{}",
                    case.name, run.stderr
                ));
            }
        }
        for unwanted in ["problems in", "unknown input", "dependency cycle"] {
            if run.stderr.contains(unwanted) {
                failures.push(format!(
                    "{}: stderr has {unwanted:?}:\n{}",
                    case.name, run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_file_that_is_not_utf8_is_an_error_at_the_byte() {
    let model: &[u8] = b"id = \"potion\"\n# caf\xe9 latin-1\nname = \"P\"\ndimensions = 64\n";
    let pipeline: &[u8] = b"[settings]\n# caf\xe9 = latin-1\n";
    for (file, bytes, other, at) in [
        (
            "pipeline.toml",
            pipeline,
            ("models.d/potion.toml", MODEL),
            "pipeline.toml:2:6",
        ),
        (
            "models.d/potion.toml",
            model,
            ("pipeline.toml", OK_PIPELINE),
            "models.d/potion.toml:2:6",
        ),
    ] {
        let p = Project::new();
        p.write(other.0, other.1);
        std::fs::create_dir_all(p.path(file).parent().unwrap()).unwrap();
        std::fs::write(p.path(file), bytes).unwrap();
        let run = p.pipe(&["build"]);
        assert_eq!(run.code, 2, "{file}: {}", run.stderr);
        assert!(
            run.stderr
                .contains(&format!("{at}: the file is not valid UTF-8 (byte 0xe9)")),
            "{file}: {}",
            run.stderr
        );
        assert!(
            run.stderr.contains("save the file as UTF-8"),
            "{}",
            run.stderr
        );
    }
}

#[test]
fn an_empty_pipeline_warns_that_there_is_nothing_to_build() {
    let p = Project::new();
    p.write("pipeline.toml", "# nothing yet\n");
    p.write("models.d/potion.toml", MODEL);
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("warning: pipeline.toml declares no targets, so there is nothing to build; add a [targets.NAME] table"),
        "{}",
        run.stderr
    );
}

#[test]
fn skip_json_with_a_movie_json_target_named_is_an_error() {
    let p = Project::new();
    p.write("pipeline.toml", OK_PIPELINE);
    p.write(
        "pipeline.toml",
        &format!("{OK_PIPELINE}[targets.movie-json]\nkind = \"movie-json\"\n"),
    );
    p.write("models.d/potion.toml", MODEL);
    let run = p.pipe(&["build", "--skip-json", "movie-json"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("--skip-json leaves out the JSON files, but movie-json (a movie-json target) is named too"),
        "{}",
        run.stderr
    );
    // Naming only other targets with --skip-json is fine (nothing to leave out).
    let run = p.pipe(&["build", "-n", "--skip-json", "movies-db"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
}

#[test]
fn every_validation_error_points_at_the_place_and_the_fix() {
    let mut failures = Vec::new();
    for case in CASES {
        let p = Project::new();
        for (path, text) in case.files {
            p.write(path, text);
        }
        let run = p.pipe(&["build"]);
        if run.code != 2 {
            failures.push(format!(
                "{}: exit {} (expected 2)\n{}",
                case.name, run.code, run.stderr
            ));
            continue;
        }
        for want in case.expect {
            if !run.stderr.contains(want) {
                failures.push(format!(
                    "{}: stderr lacks {want:?}:\n{}",
                    case.name, run.stderr
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn all_problems_are_reported_at_once() {
    let p = Project::new();
    p.write("pipeline.toml", OK_PIPELINE);
    p.write(
        "models.d/a.toml",
        "id = \"a\"\nname = \"A\"\ndimensions = 0\n",
    );
    p.write(
        "models.d/b.toml",
        "id = \"b\"\nname = \"B\"\ndimensions = 4\nmetric = \"xx\"\n",
    );
    let run = p.pipe(&["build"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr.contains("models.d/a.toml:3:14"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("models.d/b.toml:4:10"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("2 problems"), "{}", run.stderr);
}

#[test]
fn no_default_model_says_which_was_chosen_and_why() {
    let p = Project::new();
    p.write("pipeline.toml", "");
    p.write(
        "models.d/b.toml",
        "id = \"b\"\nname = \"B\"\ndimensions = 4\n",
    );
    p.write(
        "models.d/a.toml",
        "id = \"a\"\nname = \"A\"\ndimensions = 4\n",
    );
    let run = p.pipe(&["models", "--json"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("using `a` (the first by id) as the default"),
        "{}",
        run.stderr
    );
    let models: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(models["models"][0]["id"], "a");
    assert_eq!(models["models"][0]["default"], true);
}

#[test]
fn unknown_target_lists_targets_and_suggests() {
    let p = Project::new();
    p.write("pipeline.toml", "[targets.emb]\nkind = \"command\"\nper-model = true\ncommand = \"echo {model} > {out}\"\nouts = [\"e-{model}.txt\"]\n");
    p.write("models.d/potion.toml", MODEL);
    let run = p.pipe(&["build", "emb@potin"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("unknown target `emb@potin` (did you mean `emb@potion`?)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("available targets: emb, emb@potion"),
        "{}",
        run.stderr
    );
}

#[test]
fn unknown_model_lists_models() {
    let p = Project::new();
    p.write("pipeline.toml", "");
    p.write("models.d/potion.toml", MODEL);
    let run = p.pipe(&["build", "-m", "potio"]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("unknown embedding model `potio` (did you mean `potion`?)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("available models: potion"),
        "{}",
        run.stderr
    );
}
