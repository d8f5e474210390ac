//! Word lists the sample is composed from: genres, people, titles, places.
//!
//! Non-ASCII spellings are deliberate: real movie data is full of them, and
//! they exercise file names, FTS tokenisation and JSON escaping downstream.

/// OMDB genre names with a rough popularity weight (Drama and Comedy dominate
/// real catalogues; Film-Noir and Musical are niche).
pub(crate) const GENRES: [(&str, u32); 20] = [
    ("Drama", 30),
    ("Comedy", 20),
    ("Romance", 10),
    ("Horror", 10),
    ("Crime", 9),
    ("Thriller", 9),
    ("Documentary", 8),
    ("Action", 8),
    ("Adventure", 7),
    ("Western", 6),
    ("Mystery", 6),
    ("Sci-Fi", 5),
    ("War", 4),
    ("Family", 4),
    ("Animation", 4),
    ("Fantasy", 4),
    ("Musical", 3),
    ("Film-Noir", 3),
    ("History", 3),
    ("Biography", 3),
];

/// The genres' weights, in the order of [`GENRES`].
pub(crate) fn genre_weights() -> [u32; 20] {
    GENRES.map(|(_, w)| w)
}

/// Earliest and latest release years in the sample.
pub(crate) const FIRST_YEAR: i64 = 1910;
/// See [`FIRST_YEAR`].
pub(crate) const LAST_YEAR: i64 = 2020;
/// Decades covered, 1910s to 2020s.
pub(crate) const DECADES: usize = ((LAST_YEAR - FIRST_YEAR) / 10 + 1) as usize;

const FIRST: [&str; 64] = [
    "John",
    "Mary",
    "Akira",
    "Jean",
    "Sophia",
    "Orson",
    "Ingrid",
    "Fritz",
    "Bette",
    "José",
    "Zoë",
    "Federico",
    "Agnès",
    "Sergei",
    "Yasujirō",
    "Ida",
    "Howard",
    "Greta",
    "Luis",
    "Anna",
    "Marcel",
    "Liv",
    "Satyajit",
    "Gena",
    "Billy",
    "Lotte",
    "Michael",
    "Grace",
    "Vittorio",
    "Mae",
    "Robert",
    "Carmen",
    "François",
    "Jeanne",
    "Søren",
    "Małgorzata",
    "Jürgen",
    "Chantal",
    "Henry",
    "Barbara",
    "Kenji",
    "Setsuko",
    "Pedro",
    "Claudia",
    "Frank",
    "Lillian",
    "Walter",
    "Marlene",
    "Ernst",
    "Dorothy",
    "Charles",
    "Joan",
    "Roberto",
    "Giulietta",
    "Ōshima",
    "Nikolai",
    "Irène",
    "Buster",
    "Clara",
    "Douglas",
    "Louise",
    "Raoul",
    "Hedy",
    "Élodie",
];

const LAST: [&str; 96] = [
    "Ford",
    "Kurosawa",
    "Renoir",
    "Welles",
    "Davis",
    "Lang",
    "Ferrer",
    "Kazan",
    "Mifune",
    "Loren",
    "Bergman",
    "Murnau",
    "Hitchcock",
    "Fellini",
    "Varda",
    "Eisenstein",
    "Ozu",
    "Lupino",
    "Hawks",
    "Garbo",
    "Buñuel",
    "Magnani",
    "Carné",
    "Ullmann",
    "Ray",
    "Rowlands",
    "Wilder",
    "Reiniger",
    "Curtiz",
    "Kelly",
    "De Sica",
    "West",
    "Siodmak",
    "Miranda",
    "Truffaut",
    "Moreau",
    "Dreyer",
    "Szumowska",
    "Müller",
    "Akerman",
    "Hathaway",
    "Stanwyck",
    "Mizoguchi",
    "Hara",
    "Almodóvar",
    "Cardinale",
    "Capra",
    "Gish",
    "Huston",
    "Dietrich",
    "Lubitsch",
    "Arzner",
    "Chaplin",
    "Crawford",
    "Rossellini",
    "Masina",
    "Nagisa",
    "Ekk",
    "Huppert",
    "Keaton",
    "Bow",
    "Sirk",
    "Brooks",
    "Walsh",
    "Lamarr",
    "Çelik",
    "Dvořák",
    "Nuñez",
    "Ødegaard",
    "Château",
    "Kieślowski",
    "Tarkovsky",
    "Wajda",
    "Bresson",
    "Godard",
    "Resnais",
    "Rohmer",
    "Pasolini",
    "Antonioni",
    "Visconti",
    "Herzog",
    "Fassbinder",
    "Wenders",
    "Kobayashi",
    "Naruse",
    "Ichikawa",
    "Imamura",
    "Ghatak",
    "Sen",
    "Kapoor",
    "Dutt",
    "Rocha",
    "Torre",
    "Fernández",
    "Infante",
    "Félix",
];

/// The name of person number `p`. Directors, writers and actors index
/// overlapping ranges of the same people, so some directors also act.
/// Names are unique for the first 64 × 96 × 27 people (a middle initial
/// distinguishes repeats), then repeat, which real data does too.
pub(crate) fn person(p: u64) -> String {
    let combos = (FIRST.len() * LAST.len()) as u64;
    // Multiplying by a number coprime to `combos` walks the grid in a
    // scattered order, so consecutive people do not share a first name.
    let k = (p % combos) * 2_467 % combos;
    let first = FIRST[(k % FIRST.len() as u64) as usize];
    let last = LAST[(k / FIRST.len() as u64) as usize];
    let round = (p / combos) % 27;
    if round == 0 {
        format!("{first} {last}")
    } else {
        let initial = char::from(b'A' + (round - 1) as u8);
        format!("{first} {initial}. {last}")
    }
}

/// Title words; a title is one to four of them around a pattern.
pub(crate) const TITLE_NOUNS: [&str; 48] = [
    "River",
    "Storm",
    "Moon",
    "Night",
    "City",
    "Lady",
    "Ghost",
    "Train",
    "Road",
    "King",
    "Island",
    "Shadow",
    "Blood",
    "Love",
    "Château",
    "Père",
    "Mädchen",
    "Señorita",
    "Café",
    "Straße",
    "Noël",
    "Stranger",
    "Desert",
    "Harbor",
    "Mountain",
    "Sheriff",
    "Dragon",
    "Garden",
    "Circus",
    "Mirror",
    "Empire",
    "Widow",
    "Bandit",
    "Prairie",
    "Orchid",
    "Ōkami",
    "Façade",
    "Angel",
    "Wolf",
    "Sea",
    "Dream",
    "Doctor",
    "Detective",
    "Dancer",
    "Sister",
    "Brother",
    "Queen",
    "Rider",
];

/// Adjectives for titles and plots.
pub(crate) const ADJECTIVES: [&str; 24] = [
    "Dark",
    "Last",
    "Lost",
    "Silent",
    "Golden",
    "Wild",
    "Secret",
    "Hidden",
    "Little",
    "Great",
    "Crimson",
    "Forgotten",
    "Broken",
    "Eternal",
    "Savage",
    "Gentle",
    "Naked",
    "Burning",
    "Cold",
    "Strange",
    "Lonely",
    "Fatal",
    "Bitter",
    "Sweet",
];

/// OMDB `Rated` values, `N/A` included.
pub(crate) const RATED: [&str; 11] = [
    "Not Rated",
    "Approved",
    "Passed",
    "G",
    "PG",
    "PG-13",
    "R",
    "Unrated",
    "TV-PG",
    "N/A",
    "N/A",
];

/// OMDB language names with weights.
pub(crate) const LANGUAGES: [(&str, u32); 11] = [
    ("English", 55),
    ("French", 8),
    ("German", 6),
    ("Italian", 5),
    ("Spanish", 5),
    ("Japanese", 5),
    ("Russian", 4),
    ("Hindi", 3),
    ("Swedish", 2),
    ("Portuguese", 2),
    ("None", 1),
];

/// Language codes as archive.org and YouTube sources carry them.
pub(crate) const LANGUAGE_CODES: [&str; 10] =
    ["en", "fr", "de", "it", "es", "ja", "ru", "hi", "sv", "pt"];

/// OMDB countries; `USA` and `UK` are spelled the way OMDB spells them
/// (the pipeline normalises them).
pub(crate) const COUNTRIES: [(&str, u32); 14] = [
    ("USA", 45),
    ("UK", 10),
    ("France", 8),
    ("Germany", 6),
    ("Italy", 6),
    ("Japan", 5),
    ("Soviet Union", 3),
    ("India", 3),
    ("Mexico", 2),
    ("Canada", 2),
    ("Sweden", 2),
    ("West Germany", 2),
    ("Spain", 2),
    ("Brazil", 1),
];

/// ISO country codes for YouTube region restrictions.
pub(crate) const REGIONS: [&str; 10] = ["DE", "US", "GB", "FR", "JP", "CA", "AU", "IN", "BR", "RU"];

/// YouTube channels that upload public-domain films, with non-ASCII names.
pub(crate) const CHANNELS: [&str; 12] = [
    "Timeless Classics",
    "Classic Cinema",
    "Film Vault",
    "Public Domain Movies",
    "Cinéma Rétro",
    "Киноклассика",
    "Noir Nights",
    "The Silent Screen",
    "Western Hall",
    "Grindhouse Tapes",
    "Matinée Classics",
    "映画アーカイブ",
];

/// Quality labels an admin can put on a source (all get it filtered out).
pub(crate) const QUALITY_MARKS: [&str; 10] = [
    "clip",
    "teaser",
    "trailer",
    "promo",
    "behind-the-scenes",
    "interview",
    "duplicate",
    "incorrect",
    "incomplete",
    "adult",
];

/// Video qualities sources advertise.
pub(crate) const QUALITIES: [&str; 6] = ["360p", "480p", "720p", "1080p", "SD", "HD"];

/// Labels distinguishing several sources of one movie.
pub(crate) const LABELS: [&str; 6] = [
    "Colorized",
    "Restored",
    "Part 1 of 2",
    "Original German version",
    "With English subtitles",
    "Director's cut",
];

/// Plot nouns ("A story of … and …").
pub(crate) const PLOT_NOUNS: [&str; 16] = [
    "revenge",
    "love",
    "betrayal",
    "a stolen fortune",
    "a haunted house",
    "two brothers",
    "a small town",
    "the frontier",
    "a jewel thief",
    "the war",
    "a lost child",
    "a travelling circus",
    "ambition",
    "a murder",
    "the sea",
    "an unlikely friendship",
];

/// Award strings in OMDB's style.
pub(crate) const AWARDS: [&str; 6] = [
    "N/A",
    "N/A",
    "1 win.",
    "2 wins & 1 nomination.",
    "Won 2 Oscars. 5 wins & 3 nominations total",
    "Nominated for 1 Oscar. 1 win & 2 nominations total",
];

/// Alphabet of YouTube video ids.
pub(crate) const YT_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn person_names_are_unique_over_many_people() {
        let n = 64 * 96 * 3;
        let names: HashSet<String> = (0..n).map(person).collect();
        assert_eq!(names.len() as u64, n);
    }
}
