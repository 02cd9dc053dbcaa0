"""Word lists for needle keys and values: adjectives and concrete nouns, chosen to read naturally and tokenise simply."""

ADJECTIVES = tuple(
    """
ample bitter brave brisk calm clever cosy crisp curious dainty damp dapper eager early earnest faint
fancy feisty fierce fluffy fond frosty gentle giddy gleeful glossy golden grand greedy hardy hasty
hollow humble icy jolly keen kind lanky lavish lively lofty lucky mellow merry mighty misty modest
muddy nimble noble odd plucky polite proud quaint quick quiet rapid rare rosy rowdy rustic salty
sandy scarlet shaggy shiny silent silky sleepy slim smoky snowy soft sour spare spicy spotted steady
stormy sturdy subtle sunny swift tangy tender thirsty tidy timid tiny tough tranquil tricky vast
velvet vivid wary weary wild windy wise witty zany zesty amber azure bold breezy bumpy chilly cloudy
cozy dusty fresh fuzzy grumpy hazy jagged lush mossy nutty peppy plump prickly rugged shy spry stout
sweet tart wobbly woolly
""".split()
)

NOUNS = tuple(
    """
anchor apricot badger bagel banjo barrel beacon beetle biscuit blanket bobbin bonnet bottle bramble
bucket buffalo bugle cabbage cactus camel candle canoe canyon carrot castle cedar chalk cherry
chimney cider clover cobble comet compass cookie copper cricket crown cupcake dagger daisy dolphin
donkey dragon drum falcon feather fiddle flannel flute fossil fountain gadget garlic geyser ginger
glacier goblet gopher granite grape gravel hammock harbor harp hazel hedgehog helmet heron hickory
honey hornet iceberg igloo jackal jasmine jelly kayak kettle kiwi ladder lantern lemon lettuce
lizard lobster locket magnet mango marble meadow melon mitten monkey moose muffin mustard nectar
nickel noodle nutmeg oatmeal octopus olive onion orchid otter oyster paddle pebble pelican pepper
pickle pigeon pillow pinecone pistachio plum pocket pretzel puffin pumpkin quill rabbit radish raft
raisin raven ribbon rocket saddle salmon sandal sardine satchel scarf seashell shovel skillet
sparrow spinach sponge spruce squid stallion teapot thimble thistle tiger toffee tortoise trumpet
tulip turnip umbrella urchin valley velvet violin vulture waffle walnut walrus whistle willow yak
yogurt zebra zeppelin
""".split()
)
