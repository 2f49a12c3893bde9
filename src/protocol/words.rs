//! The word list for pairing codes.
//!
//! A pairing code reads `7-guitar-orbit-velvet`: a small public number, then three words from
//! this list. Each word carries 10 bits (the list has exactly 1024 entries), so three words carry
//! 30 bits of secret, comfortably above the 24 bits the pairing protocol asks for.
//!
//! The list was written for git-pair (it is not a copy of a published list) with these rules:
//! common, mostly concrete English words that are easy to say and spell; lowercase `a-z` only,
//! 3 to 8 letters; no two words that sound alike; nothing offensive; no proper nouns, brand
//! names or words with competing British/American spellings. Every word has a **unique 3-letter
//! prefix**, so typing three letters of each word is always enough (see [`complete`]), and no
//! word is a prefix of another.
//!
//! The list is sorted so lookups are binary searches; a compile-time check enforces the order.

/// Number of bits of secret one word carries.
pub const BITS_PER_WORD: u32 = 10;

/// The 1024 code words, sorted ascending (byte order), all distinct.
pub const WORDS: [&str; 1024] = [
    "abacus", "abbey", "able", "above", "accent", "acid", "acorn", "acrobat", "actor", "adapter",
    "address", "admiral", "adobe", "adult", "advice", "agate", "agent", "agile", "aim", "airport",
    "alarm", "album", "alcove", "alder", "alert", "alien", "alley", "almond", "alpaca", "alto",
    "amber", "amethyst", "amulet", "anchor", "android", "anemone", "animal", "ankle", "anorak",
    "antler", "anvil", "ape", "aphid", "apple", "apron", "aquarium", "arcade", "arena", "argon",
    "army", "aroma", "arrow", "artist", "ash", "aspen", "aster", "athlete", "atlas", "atom",
    "atrium", "attic", "auction", "audio", "aurora", "autumn", "avenue", "aviary", "avocado",
    "award", "awning", "axis", "axle", "azalea", "azure", "baby", "bacon", "badge", "bagel",
    "bait", "baker", "balloon", "bamboo", "banana", "barn", "basket", "bath", "bay", "beach",
    "bed", "beetle", "belt", "bench", "berry", "bevel", "bib", "bicycle", "bike", "bill", "bingo",
    "bird", "blanket", "blender", "blizzard", "blossom", "blue", "boat", "bobcat", "body", "bog",
    "boiler", "bolt", "bone", "book", "border", "bottle", "boulder", "bowl", "box", "boy", "brain",
    "bread", "brick", "broom", "brush", "bubble", "bucket", "budget", "buffalo", "bugle",
    "builder", "bulb", "bumper", "bundle", "burger", "bus", "butter", "buzzer", "cabin", "cactus",
    "cafe", "cage", "cake", "calendar", "camera", "candle", "captain", "carpet", "castle", "cat",
    "cave", "cedar", "celery", "cement", "ceramic", "chair", "cherry", "chicken", "chorus",
    "chunk", "cider", "cinema", "circle", "city", "clay", "clerk", "cliff", "clock", "club",
    "coat", "cobra", "cocoa", "code", "coffee", "cog", "coin", "collar", "comet", "concert",
    "cookie", "copper", "corn", "costume", "cotton", "couch", "cover", "cowboy", "coyote", "crab",
    "cream", "cricket", "crown", "crumb", "crystal", "cube", "cucumber", "cuddle", "cuff", "cup",
    "curtain", "cushion", "cutlet", "cycle", "cypress", "daisy", "dance", "dart", "dash", "data",
    "dawn", "day", "debut", "deck", "deer", "delta", "demo", "dentist", "depot", "derby", "desk",
    "detour", "device", "diamond", "dice", "digit", "dill", "dime", "dinner", "diploma", "dish",
    "ditch", "diver", "doctor", "dodo", "dog", "doily", "dolphin", "domino", "donkey", "door",
    "dove", "dowel", "dozen", "dragon", "dress", "drill", "drone", "drum", "dryer", "duck", "duet",
    "duffel", "dugout", "duke", "dumpling", "dune", "dust", "eagle", "earth", "easel", "eaves",
    "ebony", "echo", "eclipse", "edge", "editor", "eel", "egg", "elastic", "elbow", "elder",
    "elephant", "elf", "elk", "elm", "ember", "emerald", "emu", "enamel", "endive", "energy",
    "engine", "envelope", "epic", "equator", "eraser", "errand", "essay", "estate", "evening",
    "exam", "exit", "eye", "fabric", "factory", "fairy", "falcon", "family", "fan", "farm",
    "faucet", "fax", "feather", "fedora", "felt", "fence", "fern", "festival", "fever", "fiction",
    "fiddle", "field", "fig", "film", "finger", "fire", "fish", "flag", "fleece", "flint", "floor",
    "flute", "foam", "fog", "foil", "folder", "font", "food", "forest", "fossil", "fountain",
    "fox", "frame", "fridge", "frog", "fruit", "fudge", "fuel", "funnel", "furnace", "fuse",
    "gable", "gadget", "galaxy", "game", "gander", "garden", "gas", "gate", "gazelle", "gear",
    "gecko", "gelatin", "gem", "gerbil", "geyser", "ghost", "giant", "gibbon", "gift", "ginger",
    "giraffe", "glass", "glider", "globe", "glue", "gnome", "goat", "goblet", "goggles", "gold",
    "gondola", "goose", "gopher", "gorilla", "gourd", "gown", "grape", "green", "grill", "grove",
    "guard", "guest", "guitar", "gull", "gum", "guppy", "guru", "gutter", "gym", "gyro", "habit",
    "hair", "hall", "hammer", "hand", "happy", "harp", "hat", "hawk", "hay", "hazel", "heart",
    "hedge", "heel", "helmet", "hen", "herb", "hexagon", "hickory", "highway", "hiker", "hill",
    "hinge", "hippo", "hitch", "hive", "hobby", "hockey", "hog", "holiday", "home", "honey",
    "hook", "horse", "hose", "hotel", "house", "hub", "hull", "husky", "hut", "hydrant", "hyena",
    "ice", "icicle", "icon", "icy", "idea", "igloo", "iguana", "image", "impala", "inch", "index",
    "ink", "inlet", "input", "insect", "iris", "iron", "island", "italic", "item", "ivory", "ivy",
    "jacket", "jade", "jaguar", "jam", "jar", "jasmine", "javelin", "jaw", "jazz", "jeans",
    "jelly", "jersey", "jester", "jet", "jewel", "jigsaw", "jingle", "job", "jockey", "joke",
    "journal", "joy", "jubilee", "judge", "jug", "juice", "jukebox", "jumper", "jungle", "kale",
    "kangaroo", "karate", "kayak", "kazoo", "keel", "keg", "kelp", "kennel", "kernel", "kettle",
    "key", "kidney", "kilt", "kimono", "king", "kiosk", "kitten", "kiwi", "knapsack", "knee",
    "knife", "knot", "knuckle", "koala", "label", "lace", "ladder", "lagoon", "lair", "lake",
    "lamp", "lantern", "laptop", "lark", "laser", "latch", "laundry", "lava", "lawn", "layer",
    "leaf", "ledge", "leek", "leg", "lemon", "lens", "leopard", "lesson", "letter", "lever",
    "library", "lid", "lift", "light", "lily", "lime", "linen", "lion", "lip", "liquid", "liver",
    "lizard", "llama", "loaf", "lobster", "locket", "lodge", "loft", "log", "lollipop", "loop",
    "lotus", "lowland", "lucky", "luggage", "lullaby", "lumber", "lunch", "lush", "lyric",
    "machine", "magic", "mail", "malt", "mammoth", "mango", "map", "marble", "mask", "match",
    "mayor", "maze", "meadow", "mechanic", "melon", "memo", "menu", "mermaid", "mesa", "metal",
    "midnight", "milk", "mint", "mirror", "mitten", "mixer", "mocha", "model", "molar", "monkey",
    "moon", "mop", "moss", "moth", "mountain", "mower", "mud", "muffin", "mug", "mule", "mural",
    "museum", "mutton", "muzzle", "myth", "nacho", "nail", "name", "napkin", "nature", "nebula",
    "necklace", "needle", "neon", "nephew", "nest", "net", "newt", "nickel", "ninja", "nomad",
    "noodle", "north", "nose", "notebook", "nougat", "novel", "nozzle", "nugget", "number",
    "nurse", "nut", "nylon", "oak", "oar", "oasis", "oat", "object", "oblong", "oboe", "ocean",
    "octopus", "office", "oil", "okra", "olive", "omega", "onion", "onyx", "opal", "opera",
    "orange", "orbit", "orchard", "organ", "origami", "osprey", "ostrich", "otter", "ounce",
    "oval", "oven", "owl", "owner", "oxen", "oxygen", "oyster", "package", "paddle", "page",
    "paint", "palace", "panda", "paper", "parrot", "pasta", "patio", "pavement", "paw", "peach",
    "pebble", "pecan", "peg", "pelican", "pencil", "people", "pepper", "perfume", "petal",
    "pharmacy", "phone", "physics", "piano", "picnic", "pie", "pig", "pillow", "pine", "pioneer",
    "pipe", "pirate", "pitcher", "pivot", "pixel", "pizza", "planet", "pliers", "plum", "pocket",
    "podium", "poem", "pointer", "polar", "pompom", "pond", "pool", "popcorn", "porch", "postcard",
    "potato", "pouch", "powder", "prawn", "pretzel", "prism", "proton", "prune", "pudding",
    "puffin", "pulley", "pumpkin", "puppy", "purse", "putty", "puzzle", "pyramid", "python",
    "quail", "queen", "quilt", "rabbit", "race", "radio", "raft", "rain", "rake", "rally", "ramp",
    "ranch", "rattle", "raven", "ray", "razor", "recipe", "reef", "relic", "remote", "reptile",
    "retina", "rhino", "rhubarb", "ribbon", "rice", "ridge", "ring", "ripple", "river", "road",
    "robot", "rocket", "rodeo", "roller", "roof", "rope", "rose", "rover", "rowboat", "ruby",
    "rudder", "rug", "ruler", "rumba", "runway", "rust", "sack", "saddle", "safe", "sage", "sail",
    "salad", "sand", "sapling", "sardine", "sash", "satin", "sauce", "saw", "scarf", "school",
    "scooter", "screw", "scuba", "seal", "secret", "sedan", "seed", "segment", "serpent", "shark",
    "shelf", "ship", "shoe", "shrimp", "shuttle", "sibling", "sickle", "sidewalk", "sierra",
    "signal", "silver", "sink", "siren", "sister", "sizzle", "skate", "sketch", "skirt", "skull",
    "sky", "slate", "sled", "slide", "slope", "slush", "smile", "smoke", "smudge", "snake",
    "sneaker", "snippet", "snow", "soap", "sock", "soda", "sofa", "soil", "solar", "song", "soot",
    "sorbet", "soup", "space", "spear", "sphere", "spider", "splash", "spoon", "spring", "spud",
    "squid", "star", "steam", "stick", "stone", "straw", "studio", "style", "subway", "suds",
    "sugar", "suit", "summer", "sun", "surf", "sushi", "swan", "sweater", "swing", "sword",
    "syrup", "system", "table", "taco", "tadpole", "taffy", "tail", "talon", "tank", "tape",
    "target", "tattoo", "tavern", "taxi", "teapot", "teddy", "teeth", "temple", "tent", "terrace",
    "text", "theme", "thimble", "thorn", "thread", "thumb", "tiara", "ticket", "tie", "tiger",
    "tile", "timber", "tin", "tissue", "titan", "toast", "toddler", "toe", "toffee", "toga",
    "token", "tomato", "tool", "topaz", "torch", "totem", "toucan", "towel", "toy", "train",
    "tree", "triangle", "trophy", "truck", "tuba", "tugboat", "tulip", "tuna", "turtle", "tusk",
    "tutor", "tuxedo", "tweed", "twig", "udder", "umbrella", "uncle", "unicorn", "urchin",
    "utensil", "valley", "van", "varnish", "vase", "vault", "veal", "velvet", "vest", "video",
    "village", "vinegar", "violin", "viper", "visor", "vixen", "vocal", "volcano", "vortex",
    "vowel", "voyage", "vulture", "waffle", "wagon", "wallet", "wand", "wasp", "water", "wave",
    "wax", "web", "wedge", "weed", "well", "west", "whale", "wheel", "whistle", "wick", "widget",
    "wig", "willow", "window", "wire", "wizard", "wolf", "wombat", "wood", "worm", "wrench",
    "wrist", "xenon", "yak", "yam", "yard", "yeast", "yellow", "yeti", "yodel", "yoga", "yolk",
    "zebra", "zenith", "zero", "zest", "zigzag", "zinc", "zipper", "zodiac", "zone", "zoo",
];

// Binary search in `index_of` and `complete` is only correct on a strictly sorted list: refuse
// to compile if someone edits the list out of order.
const _: () = assert!(is_strictly_sorted(&WORDS), "WORDS must be strictly sorted");

const fn is_strictly_sorted(words: &[&str]) -> bool {
    let mut i = 1;
    while i < words.len() {
        if !str_less(words[i - 1], words[i]) {
            return false;
        }
        i += 1;
    }
    true
}

const fn str_less(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut i = 0;
    while i < a.len() && i < b.len() {
        if a[i] != b[i] {
            return a[i] < b[i];
        }
        i += 1;
    }
    a.len() < b.len()
}

/// The word for a 10-bit value.
///
/// Only the low 10 bits of `index` are used, so every `u16` maps to a word and this never
/// panics; callers normally pass a value below 1024.
pub fn word(index: u16) -> &'static str {
    WORDS[usize::from(index & 0x3ff)]
}

/// The 10-bit value of a word, or `None` if it is not in the list.
///
/// The match is exact: callers should trim and lowercase what a person typed first.
pub fn index_of(word: &str) -> Option<u16> {
    WORDS
        .binary_search(&word)
        .ok()
        .and_then(|i| u16::try_from(i).ok())
}

/// The only word that starts with `prefix`, if exactly one does.
///
/// Because every word has a unique 3-letter prefix, any 3 or more leading letters of a word
/// complete to it; shorter prefixes usually match several words and give `None`. An exact word
/// completes to itself. Like [`index_of`], the match is case-sensitive.
pub fn complete(prefix: &str) -> Option<&'static str> {
    if prefix.is_empty() {
        return None;
    }
    let first = WORDS.partition_point(|w| *w < prefix);
    let candidate = *WORDS.get(first)?;
    if !candidate.starts_with(prefix) {
        return None;
    }
    match WORDS.get(first + 1) {
        Some(next) if next.starts_with(prefix) => None,
        _ => Some(candidate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn has_exactly_1024_words() {
        assert_eq!(WORDS.len(), 1024);
        assert_eq!(1usize << BITS_PER_WORD, WORDS.len());
    }

    #[test]
    fn all_words_are_distinct() {
        let set: HashSet<&str> = WORDS.iter().copied().collect();
        assert_eq!(set.len(), WORDS.len());
    }

    #[test]
    fn all_words_are_3_to_8_lowercase_ascii_letters() {
        for w in WORDS {
            assert!(
                (3..=8).contains(&w.len()) && w.bytes().all(|b| b.is_ascii_lowercase()),
                "{w:?} does not match ^[a-z]{{3,8}}$"
            );
        }
    }

    #[test]
    fn list_is_strictly_sorted() {
        assert!(WORDS.windows(2).all(|p| p[0] < p[1]));
        assert!(is_strictly_sorted(&WORDS));
        assert!(!is_strictly_sorted(&["b", "a"]));
        assert!(!is_strictly_sorted(&["a", "a"]));
        assert!(!is_strictly_sorted(&["ab", "a"]));
    }

    #[test]
    fn every_word_has_a_unique_3_letter_prefix() {
        let mut seen = HashSet::new();
        for w in WORDS {
            assert!(
                seen.insert(&w[..3]),
                "3-letter prefix of {w:?} is not unique"
            );
        }
    }

    #[test]
    fn no_word_is_a_prefix_of_another() {
        for pair in WORDS.windows(2) {
            assert!(!pair[1].starts_with(pair[0]), "{pair:?}");
        }
    }

    #[test]
    fn index_of_inverts_word_for_every_index() {
        for i in 0..1024u16 {
            assert_eq!(index_of(word(i)), Some(i));
        }
    }

    #[test]
    fn word_uses_only_the_low_10_bits() {
        assert_eq!(word(1024), word(0));
        assert_eq!(word(u16::MAX), word(1023));
    }

    #[test]
    fn index_of_rejects_unknown_and_differently_cased_words() {
        assert_eq!(index_of(""), None);
        assert_eq!(index_of("zzzzzzzz"), None);
        assert_eq!(index_of("guitars"), None);
        assert_eq!(index_of("Guitar"), None);
        assert_eq!(index_of(" guitar"), None);
        assert!(index_of("guitar").is_some());
    }

    #[test]
    fn complete_accepts_any_prefix_of_three_or_more_letters() {
        for w in WORDS {
            for end in 3..=w.len() {
                assert_eq!(complete(&w[..end]), Some(w), "prefix {:?}", &w[..end]);
            }
        }
    }

    #[test]
    fn complete_refuses_ambiguous_or_unknown_prefixes() {
        assert_eq!(complete(""), None);
        assert_eq!(complete("g"), None);
        assert_eq!(complete("gu"), None);
        assert_eq!(complete("qqq"), None);
        assert_eq!(complete("guitarx"), None);
    }

    /// Groups of words that sound alike (in at least one common accent). At most one word of
    /// each group may be in the list; checked against the whole group so that adding a word
    /// later cannot slip a homophone in.
    const HOMOPHONES: &[&[&str]] = &[
        &["ail", "ale"],
        &["air", "heir", "err"],
        &["aisle", "isle"],
        &["allowed", "aloud"],
        &["altar", "alter"],
        &["ant", "aunt"],
        &["arc", "ark"],
        &["ate", "eight"],
        &["bail", "bale"],
        &["ball", "bawl"],
        &["band", "banned"],
        &["bare", "bear"],
        &["bass", "base"],
        &["be", "bee"],
        &["beach", "beech"],
        &["bean", "been"],
        &["beat", "beet"],
        &["berry", "bury"],
        &["berth", "birth"],
        &["bite", "byte"],
        &["blew", "blue"],
        &["boar", "bore"],
        &["board", "bored"],
        &["boarder", "border"],
        &["bolder", "boulder"],
        &["bough", "bow"],
        &["bowl", "boll"],
        &["boy", "buoy"],
        &["brake", "break"],
        &["bread", "bred"],
        &["bridal", "bridle"],
        &["build", "billed"],
        &["buy", "by", "bye"],
        &["cache", "cash"],
        &["caret", "carrot", "karat"],
        &["cede", "seed"],
        &["ceiling", "sealing"],
        &["cell", "sell"],
        &["cellar", "seller"],
        &["cent", "scent", "sent"],
        &["cereal", "serial"],
        &["chews", "choose"],
        &["chilly", "chili"],
        &["choral", "coral"],
        &["chord", "cord"],
        &["chute", "shoot"],
        &["cite", "sight", "site"],
        &["claws", "clause"],
        &["coarse", "course"],
        &["colonel", "kernel"],
        &["creak", "creek"],
        &["crews", "cruise"],
        &["cue", "queue"],
        &["cymbal", "symbol"],
        &["days", "daze"],
        &["dear", "deer"],
        &["dew", "due"],
        &["die", "dye"],
        &["doe", "dough"],
        &["dual", "duel"],
        &["earn", "urn"],
        &["ewe", "you", "yew"],
        &["eye", "aye"],
        &["fair", "fare"],
        &["fairy", "ferry"],
        &["feat", "feet"],
        &["fir", "fur"],
        &["flair", "flare"],
        &["flea", "flee"],
        &["flew", "flu", "flue"],
        &["floe", "flow"],
        &["flour", "flower"],
        &["for", "fore", "four"],
        &["forth", "fourth"],
        &["foul", "fowl"],
        &["gait", "gate"],
        &["genes", "jeans"],
        &["gild", "guild"],
        &["gnu", "knew", "new"],
        &["gorilla", "guerrilla"],
        &["grate", "great"],
        &["groan", "grown"],
        &["guessed", "guest"],
        &["hail", "hale"],
        &["hair", "hare"],
        &["hall", "haul"],
        &["hangar", "hanger"],
        &["hart", "heart"],
        &["hay", "hey"],
        &["heal", "heel"],
        &["heard", "herd"],
        &["hi", "high"],
        &["higher", "hire"],
        &["him", "hymn"],
        &["hoard", "horde"],
        &["hoarse", "horse"],
        &["hoes", "hose"],
        &["hole", "whole"],
        &["hour", "our"],
        &["idle", "idol"],
        &["in", "inn"],
        &["jewel", "joule"],
        &["key", "quay"],
        &["knead", "need"],
        &["knight", "night"],
        &["knit", "nit"],
        &["knot", "not"],
        &["knows", "nose"],
        &["lain", "lane"],
        &["leak", "leek"],
        &["lessen", "lesson"],
        &["links", "lynx"],
        &["loan", "lone"],
        &["loot", "lute"],
        &["made", "maid"],
        &["mail", "male"],
        &["main", "mane"],
        &["maize", "maze"],
        &["mall", "maul"],
        &["manner", "manor"],
        &["meat", "meet", "mete"],
        &["medal", "meddle", "metal", "mettle"],
        &["might", "mite"],
        &["mince", "mints"],
        &["miner", "minor"],
        &["missed", "mist"],
        &["moat", "mote"],
        &["mode", "mowed"],
        &["moose", "mousse"],
        &["morning", "mourning"],
        &["muscle", "mussel"],
        &["naval", "navel"],
        &["none", "nun"],
        &["oar", "or", "ore"],
        &["one", "won"],
        &["pail", "pale"],
        &["pain", "pane"],
        &["pair", "pare", "pear"],
        &["pause", "paws"],
        &["peace", "piece"],
        &["peak", "peek"],
        &["peal", "peel"],
        &["pedal", "peddle", "petal"],
        &["peer", "pier"],
        &["plain", "plane"],
        &["plum", "plumb"],
        &["pole", "poll"],
        &["poor", "pore", "pour"],
        &["pray", "prey"],
        &["principal", "principle"],
        &["quarts", "quartz"],
        &["rain", "reign", "rein"],
        &["raise", "rays", "raze"],
        &["rap", "wrap"],
        &["read", "red", "reed"],
        &["real", "reel"],
        &["rest", "wrest"],
        &["right", "rite", "write"],
        &["ring", "wring"],
        &["road", "rode", "rowed"],
        &["role", "roll"],
        &["root", "route"],
        &["rose", "rows"],
        &["rough", "ruff"],
        &["rung", "wrung"],
        &["rye", "wry"],
        &["sail", "sale"],
        &["sauce", "source"],
        &["scene", "seen"],
        &["sea", "see"],
        &["seam", "seem"],
        &["sew", "so", "sow"],
        &["sewing", "sowing"],
        &["shear", "sheer"],
        &["side", "sighed"],
        &["slay", "sleigh"],
        &["soar", "sore"],
        &["sole", "soul"],
        &["some", "sum"],
        &["son", "sun"],
        &["stair", "stare"],
        &["stake", "steak"],
        &["stationary", "stationery"],
        &["steal", "steel"],
        &["stile", "style"],
        &["suite", "sweet"],
        &["tacks", "tax"],
        &["tail", "tale"],
        &["taught", "taut"],
        &["tea", "tee"],
        &["team", "teem"],
        &["tear", "tier"],
        &["tern", "turn"],
        &["their", "there"],
        &["threw", "through"],
        &["throne", "thrown"],
        &["thyme", "time"],
        &["tide", "tied"],
        &["tie", "thai"],
        &["to", "too", "two"],
        &["toad", "towed"],
        &["toe", "tow"],
        &["vain", "vane", "vein"],
        &["vale", "veil"],
        &["vial", "vile"],
        &["wade", "weighed"],
        &["wail", "whale"],
        &["waist", "waste"],
        &["wait", "weight"],
        &["waive", "wave"],
        &["ware", "wear", "where"],
        &["warn", "worn"],
        &["way", "weigh"],
        &["weak", "week"],
        &["weather", "whether"],
        &["which", "witch"],
        &["whine", "wine"],
        &["wood", "would"],
        &["yoke", "yolk"],
    ];

    #[test]
    fn no_two_words_sound_alike() {
        for group in HOMOPHONES {
            let present: Vec<&str> = group
                .iter()
                .copied()
                .filter(|w| index_of(w).is_some())
                .collect();
            assert!(present.len() <= 1, "homophones in the list: {present:?}");
        }
    }

    #[test]
    fn example_code_words_are_in_the_list() {
        for w in ["guitar", "orbit", "velvet"] {
            assert!(index_of(w).is_some(), "{w}");
        }
    }
}
