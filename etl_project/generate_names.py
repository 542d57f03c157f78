"""Embedded name lists for the synthetic roster generator (no downloads, no external data).

A mix of common US first and family names with the shapes importers must cope with: apostrophes
(O'Brien), hyphens (Smith-Jones, Mary-Kate), spaces (De La Cruz) and non-ASCII letters (José, Zoë, Núñez).
"""

from __future__ import annotations

FEMALE_GIVEN_NAMES = (
    "Olivia Emma Charlotte Amelia Sophia Mia Isabella Ava Evelyn Luna Harper Sofia Camila Eleanor Elizabeth "
    "Violet Scarlett Emily Hazel Lily Gianna Aurora Penelope Aria Nora Chloe Ellie Mila Avery Layla Abigail "
    "Ella Isla Eliana Nova Madison Zoe Ivy Grace Lucy Willow Emilia Riley Naomi Victoria Stella Elena Hannah "
    "Valentina Maya Zoey Delilah Leah Lainey Lillian Paisley Genesis Madelyn Sadie Sophie Leilani Addison "
    "Natalie Josephine Alice Ruby Claire Kinsley Everly Emery Adeline Kennedy Maeve Audrey Autumn Athena "
    "Eden Iris Anna Eloise Jade Maria Caroline Brooklyn Quinn Aaliyah Vivian Liliana Gabriella Hailey Sarah "
    "Savannah Cora Madeline Natalia Ariana Lydia Lyla Clara Allison Aubrey Millie Melody Ayla Serenity Bella "
    "Skylar Josie Lucia Daisy Raelynn Eva Juniper Samantha Elliana Margaret Jasmine Ximena Guadalupe Fatima "
    "Aisha Mei Priya Ananya Yuki Hana Keisha Imani Destiny Jazmin Mariana Daniela Valeria Renée Zoë Chloé "
    "Inés Ana-Sofia Mary-Kate Anne-Marie Nadia Amara Sienna Talia Rosa Beatriz Noemí Siobhan Niamh Ngozi "
    "Thuy Linh Sakura Esperanza Marisol Dalia Yasmin Leila Farah Ingrid Astrid Freya Greta Zara Anaya"
).split()

MALE_GIVEN_NAMES = (
    "Liam Noah Oliver James Elijah Mateo Theodore Henry Lucas William Benjamin Levi Sebastian Jack Ezra "
    "Michael Daniel Leo Owen Samuel Hudson Alexander Asher Luca Ethan John David Jackson Joseph Mason Luke "
    "Matthew Julian Dylan Elias Jacob Maverick Gabriel Logan Aiden Thomas Isaac Miles Grayson Santiago "
    "Anthony Wyatt Carter Jayden Ezekiel Caleb Cooper Josiah Charles Christopher Isaiah Nolan Cameron Nathan "
    "Joshua Kai Waylon Angel Lincoln Andrew Roman Adrian Aaron Wesley Ian Thiago Axel Brooks Bennett Weston "
    "Rowan Christian Theo Beau Eli Silas Jonathan Ryan Leonardo Walker Jaxon Micah Everett Robert Enzo "
    "Parker Jeremiah Jose Colton Luka Easton Landon Jordan Amir Gael Austin Adam Jameson August Xavier "
    "Myles Dominic Damian Nicholas Jace Carson Atlas Adriel Kayden Hunter River Greyson Emmett Harrison "
    "Vincent Milo Jasper Giovanni Jonah Zion Connor Sawyer Arthur Ryder Archer Lorenzo Declan Emiliano "
    "Luis Diego George Evan Jaxson Carlos Juan Jesús José Andrés Matías Joaquín Rafael Tomás Ángel Omar "
    "Mohammed Ahmed Yusuf Arjun Rohan Vikram Hiroshi Kenji Minh Duc Kwame Chidi Tariq Malik DeShawn "
    "Jean-Luc Jean-Pierre Pierre-Louis Seán Ciarán Björn Lars Søren Anders Dmitri Nikolai Mikhail"
).split()

FAMILY_NAMES = (
    "Smith Johnson Williams Brown Jones Garcia Miller Davis Rodriguez Martinez Hernandez Lopez Gonzalez "
    "Wilson Anderson Thomas Taylor Moore Jackson Martin Lee Perez Thompson White Harris Sanchez Clark "
    "Ramirez Lewis Robinson Walker Young Allen King Wright Scott Torres Nguyen Hill Flores Green Adams "
    "Nelson Baker Hall Rivera Campbell Mitchell Carter Roberts Gomez Phillips Evans Turner Diaz Parker "
    "Cruz Edwards Collins Reyes Stewart Morris Morales Murphy Cook Rogers Gutierrez Ortiz Morgan Cooper "
    "Peterson Bailey Reed Kelly Howard Ramos Kim Cox Ward Richardson Watson Brooks Chavez Wood James "
    "Bennett Gray Mendoza Ruiz Hughes Price Alvarez Castillo Sanders Patel Myers Long Ross Foster Jimenez "
    "Powell Jenkins Perry Russell Sullivan Bell Coleman Butler Henderson Barnes Gonzales Fisher Vasquez "
    "Simmons Romero Jordan Patterson Alexander Hamilton Graham Reynolds Griffin Wallace Moreno West Cole "
    "Hayes Bryant Herrera Gibson Ellis Tran Medina Aguilar Stevens Murray Ford Castro Marshall Owens "
    "Harrison Fernandez McDonald Woods Washington Kennedy Wells Vargas Henry Chen Freeman Webb Tucker "
    "Guzman Burns Crawford Olson Simpson Porter Hunter Gordon Mendez Silva Shaw Snyder Mason Dixon Munoz "
    "Hunt Hicks Holmes Palmer Wagner Black Robertson Boyd Rose Stone Salazar Fox Warren Mills Meyer Rice "
    "Schmidt Garza Daniels Ferguson Nichols Stephens Soto Weaver Ryan Gardner Payne Grant Dunn Kelley "
    "Spencer Hawkins Arnold Pierce Vazquez Hansen Peters Santos Hart Bradley Knight Elliott Cunningham "
    "Duncan Armstrong Hudson Carroll Lane Riley Andrews Alvarado Ray Delgado Berry Perkins Hoffman "
    "Johnston Matthews Peña Richards Willis Carpenter Lawrence Sandoval Guerrero George Chapman Rios "
    "Estrada Ortega Watkins Greene Núñez Wheeler Valdez Harper Burke Larson Santiago Maldonado Morrison "
    "Franklin Carlson Austin Dominguez Carr Lawson Jacobs O'Brien O'Connor O'Neill O'Reilly D'Angelo "
    "D'Souza McCarthy MacDonald Smith-Jones Garcia-Lopez Martinez-Rivera Lee-Chen Müller Schröder Björk "
    "Ibáñez Muñoz-Díaz Gómez Sánchez Pérez Hernández Rodríguez Martínez Fernández Álvarez Ramírez Jiménez "
    "Ruíz Báez Nakamura Tanaka Suzuki Yamamoto Watanabe Sato Park Choi Jung Kang Cho Yoon Pham Hoang Vu "
    "Le Huynh Phan Singh Kumar Shah Mehta Gupta Reddy Iyer Okafor Adeyemi Mensah Osei Abdullah Hassan Ali "
    "Haddad Khoury Cohen Levy Friedman Kowalski Nowak Wiśniewski Novák Horváth Ivanova Petrov Popescu "
    "Rossi Russo Ferrari Esposito Bianchi Romano Costa Ricci Dubois Lefèvre Moreau Girard Lambert Larsen "
    "Jensen Nielsen Andersson Johansson Lindqvist Kowalczyk Nguyễn Brennan Gallagher Doyle Byrne Walsh"
).split()

# Multi-word family names (kept out of the split lists above).
FAMILY_NAMES += ["De La Cruz", "Van der Berg", "St. James", "Da Silva"]

# Namesakes for school names ("Lincoln Elementary School").
SCHOOL_NAMESAKES = (
    "Lincoln Washington Jefferson Roosevelt Franklin Kennedy Madison Adams Jackson Monroe Hamilton "
    "King Chavez Parks Tubman Douglass Carver Edison Whitman Emerson Thoreau Twain Frost Dickinson "
    "Hawthorne Longfellow Muir Audubon Earhart Ride Curie Einstein Banneker Keller Sequoyah Juarez "
    "Mendez Huerta Ochoa Yamasaki Oak Maple Cedar Willow Pine Riverside Lakeview Hillcrest Meadowbrook "
    "Sunnyside Westwood Eastridge Northgate Southfield Fairview Brookside Valley Highland Summit Bayview"
).split()

CITIES_OF_BIRTH = (
    "Springfield|Riverside|Fresno|Sacramento|Oakland|San José|Los Angeles|San Diego|Phoenix|Houston|Dallas|"
    "Chicago|Denver|Portland|Seattle|Boise|Salt Lake City|Albuquerque|El Paso|Tucson|Reno|Bakersfield|"
    "Stockton|Modesto|Santa Ana|Anaheim|Long Beach|Chula Vista|Glendale|Pasadena"
).split("|")
