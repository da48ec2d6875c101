"""The course notebooks, shipped inside the package as ``sngan_edu.course_notebooks``
(pyproject.toml maps this folder there): ``sngan-edu notebooks DEST`` copies them out."""
